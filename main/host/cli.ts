// The `refit` command-line interface: the same engine as the app, headless.
import { Command } from 'commander';
import { REFIT_VERSION } from '../engine/version';
import { formatTable, formatCount, formatBytes, formatFlops } from './format';
import { BACKENDS } from '../api/backends';
import { backendOption, positiveInt, startBackend } from './cli-common';
import { registerInspect } from './commands/inspect';
import { registerTrain } from './commands/train';
import { registerExport } from './commands/export';
import { registerPredict } from './commands/predict';
import { registerWeights } from './commands/weights';
import { processIO } from './commands/io';
import { ProgressLine } from './progress-line';

// Commands import the engine lazily so that `--help` answers at once, without loading TF.js.



const program = new Command('refit')
  .description('Refit: fine-tune real CNN backbones on your own labelled image folders, offline.')
  .version(REFIT_VERSION)
  .option('--backend <name>', `TF.js backend to use (${BACKENDS.join(', ')}); default: the best available`, backendOption)
  .showHelpAfterError();

program
  .command('models')
  .description('List the backbones Refit can train, with their size and cost')
  .option('--json', 'print a JSON array instead of a table')
  .action(async (options: { json?: boolean }) => {
    const { listBackboneSpecs: listBackbones } = await import('../../models/catalog'); // facts only: no TF.js
    const models = listBackbones().map((m) => ({
      id: m.id,
      name: m.name,
      description: m.description,
      params: m.params,
      featureDim: m.featureDim,
      inputSize: m.inputSize,
      minInputSize: m.minInputSize,
      flops: m.flops,
      preprocessing: m.preprocessing.mode,
      stages: m.stages,
      weights: m.weights,
    }));
    if (options.json) {
      console.log(JSON.stringify(models, null, 2));
      return;
    }
    console.log(
      formatTable(
        ['id', 'name', 'params', 'features', 'input', 'GFLOPs', 'weights'],
        models.map((m) => [
          m.id,
          m.name,
          formatCount(m.params),
          m.featureDim,
          `${m.inputSize}²`,
          formatFlops(m.flops),
          m.weights.length ? m.weights.join(', ') : 'none',
        ]),
      ),
    );
  });

program
  .command('doctor')
  .description('Show which compute backend Refit uses, why, and the machine it runs on')
  .option('--json', 'print the report as JSON')
  .action(async (options: { json?: boolean }, command: Command) => {
    await startBackend(command);
    const { doctor } = await import('../engine/doctor');
    const report = await doctor();
    if (options.json) {
      console.log(JSON.stringify(report, null, 2));
      return;
    }
    const { backend, forward, machine, versions } = report;
    const lines = [
      `Refit ${report.refit}`,
      `Backend:  ${backend.name} (TF.js '${backend.tfBackend}', ${backend.accelerator.toUpperCase()}, ${backend.threads} thread${backend.threads === 1 ? '' : 's'})`,
      ...(backend.requested ? [`          requested: ${backend.requested}`] : []),
      ...backend.attempts.filter((a) => !a.ok).map((a) => `  not ${a.name}: ${a.reason}`),
      forward.runtime === 'onnxruntime'
        ? `Forward:  onnxruntime ${forward.version ?? ''} (CPU, ${forward.threads} thread${forward.threads === 1 ? '' : 's'}) for prediction, feature extraction and frozen stages`
        : `Forward:  TF.js '${backend.tfBackend}' for prediction, feature extraction and frozen stages (onnxruntime not used: ${forward.reason ?? 'unavailable'})`,
      `Training: ${report.trainer.engine === 'onnxruntime' ? 'onnxruntime' : 'TF.js'} for fine-tune and full modes (${report.trainer.reason}); the head trains in TF.js`,
      `Machine:  ${machine.platform}/${machine.arch}, ${machine.cores} cores, ${machine.cpu}`,
      `Memory:   ${formatBytes(machine.totalMemoryBytes)} total, ${formatBytes(machine.freeMemoryBytes)} free`,
      `Versions: ${Object.entries(versions)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    ];
    console.log(lines.join('\n'));
  });

program
  .command('classify-imagenet')
  .description('Top ImageNet labels for images, with a backbone\'s ImageNet weights (default: the bundled ResNet-50)')
  .argument('<paths...>', 'image files or folders (searched recursively)')
  .option('--backbone <id>', 'any backbone with ImageNet weights on this machine (see refit weights list)', 'resnet50')
  .option('--weights <set>', "the weight set (default: the backbone's default set that is present)", 'imagenet')
  .option('--top <k>', 'labels per image', positiveInt, 5)
  .option('--json', 'print one JSON array: [{file, top: [{label, probability, index}], error?}]')
  .action(async (paths: string[], options: { top: number; json?: boolean; backbone: string; weights: string }, command: Command) => {
    // TF.js starts only if the cached ONNX model must be built (or onnxruntime cannot serve it).
    const { classifyImagenet } = await import('../engine/classify-imagenet');
    const line = new ProgressLine(processIO, { enabled: !options.json });
    let setTotal: (files: number) => void = () => undefined;
    const total = new Promise<number>((resolve) => (setTotal = resolve));
    const showProgress = line.counter('classifying', () => total);
    let done = 0;
    showProgress(0);
    const results = await classifyImagenet(paths, {
      backbone: options.backbone,
      weights: options.weights,
      topK: options.top,
      prepareTfjs: () => startBackend(command),
      onTotal: setTotal,
      onResult: (result) => {
        done++;
        if (options.json) return;
        line.clear();
        console.log(result.file);
        if (result.error) console.log(`  error: ${result.error}`);
        for (const t of result.top) console.log(`  ${(t.probability * 100).toFixed(1).padStart(5)}%  ${t.label}`);
        showProgress(done);
      },
    }).finally(() => line.clear());
    if (options.json) console.log(JSON.stringify(results, null, 2));
    if (results.length === 0) {
      console.error('No images found in: ' + paths.join(', '));
      process.exitCode = 1;
    } else if (results.every((r) => r.error)) {
      process.exitCode = 1;
    }
  });

registerInspect(program);
registerTrain(program);
registerExport(program);
registerPredict(program);
registerWeights(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  console.error(`refit: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
