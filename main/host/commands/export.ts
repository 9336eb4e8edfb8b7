// `refit export <run-folder> --out DIR`: a training run's best checkpoint as a self-contained model folder.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { startBackend } from '../cli-common';
import { formatBytes } from '../format';
import { ProgressLine } from '../progress-line';
import { EXIT_INTERRUPTED, InterruptedError, processIO, withInterrupt, type CommandIO } from './io';

interface ExportCliOptions {
  out: string;
  json?: boolean;
  format: 'tfjs' | 'onnx';
  onnxLayout: 'NHWC' | 'NCHW';
}

/** exportRun's onProgress drawing on `line`: "exporting: write 45% · ETA 2s" (undefined when the line is off). */
export function exportProgress(line: ProgressLine): ((p: { phase: string; fraction: number }) => void) | undefined {
  return line.active ? (p) => line.status({ label: `exporting: ${p.phase}`, fraction: p.fraction }) : undefined;
}

export function registerExport(program: Command, io: CommandIO = processIO): Command {
  return program
    .command('export')
    .description('Export the best checkpoint of a training run as a model folder that plain TF.js can load')
    .argument('<run-folder>', 'a training run folder (runs/<id>/ inside a project: run.json and best/)')
    .requiredOption('--out <dir>', 'destination folder; a previous Refit export there is replaced, any other non-empty folder is refused')
    .option('--json', 'print the export report as JSON')
    .addOption(
      new Option('--format <format>', 'onnx: the TF.js model and model.onnx (the same classifier as an ONNX graph; refit predict loads it directly, without TF.js); tfjs: the TF.js model only')
        .choices(['tfjs', 'onnx'])
        .default('onnx'),
    )
    .addOption(
      new Option('--onnx-layout <layout>', 'input layout of model.onnx: NHWC (as the TF.js model) or NCHW')
        .default('NHWC')
        .argParser((v: string) => {
          const layout = v.toUpperCase();
          if (layout !== 'NHWC' && layout !== 'NCHW') throw new InvalidArgumentError('expected NHWC or NCHW');
          return layout;
        }),
    )
    .action(async (runFolder: string, options: ExportCliOptions, command: Command) => {
      await startBackend(command);
      const { exportRun } = await import('../../engine/export');
      const line = new ProgressLine(io, { enabled: !options.json });
      let report;
      try {
        report = await withInterrupt((signal) =>
          exportRun(runFolder, options.out, {
            signal,
            onnx: options.format === 'onnx',
            onnxLayout: options.onnxLayout,
            onProgress: exportProgress(line),
          }),
        );
      } catch (err) {
        if (!(err instanceof InterruptedError)) throw err;
        line.clear();
        io.stderr('Export interrupted; nothing was changed.\n');
        io.setExitCode(EXIT_INTERRUPTED);
        return;
      } finally {
        line.clear();
      }
      if (options.json) {
        io.stdout(JSON.stringify(report, null, 2) + '\n');
        return;
      }
      const shards = report.files.filter((f) => f.path.endsWith('.bin')).length;
      io.stdout(
        [
          `Exported ${report.backbone} classifier (${report.labels.length} classes: ${report.labels.join(', ')}) to ${report.outDir}`,
          ...(report.replaced ? ['  replaced the previous export there'] : []),
          `  files: model.json, ${shards} weight shard(s), ${report.files.some((f) => f.path === 'model.onnx') ? 'model.onnx, ' : ''}refit.json, README.md (${formatBytes(report.totalBytes)})`,
          ...(report.valAccuracy !== null ? [`  validation accuracy: ${(report.valAccuracy * 100).toFixed(1)}%`] : []),
          `  took ${report.seconds.toFixed(1)} s`,
          `Try it: refit predict ${report.outDir} <images or folders>`,
        ].join('\n') + '\n',
      );
    });
}
