// npm run bench:train-memory [-- --size 224 --batch 16 vgg16 seresnet152 …]
// Peak resident memory of one full-mode training step on onnxruntime (models/onnx-train), each backbone
// in a fresh process (maxRSS of that process), beside what models/onnx-train/memory.ts estimates for it
// from the training graph: the estimate the launcher uses to refuse a run the machine cannot hold.
import { fork } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const size = flag('size', 224);
const batch = flag('batch', 16);
const mib = (b: number) => Math.round(b / 2 ** 20);

interface Result {
  backbone: string;
  params: number;
  rssAfterModelMiB: number;
  peakRssMiB: number;
  estimateMiB: number;
  parts: Record<string, number>;
  activationFloats: number;
  workspaceFloats: number;
  stepSeconds: number;
  loss: number;
}

async function measure(backbone: string): Promise<Result> {
  const tf = await import('@tensorflow/tfjs');
  const { initBackend } = await import('../main/engine/backend');
  const { getBackbone } = await import('../models/registry');
  const { attachHead, buildHead } = await import('../models/heads');
  const { unfreezeAll } = await import('../models/freeze');
  const { OnnxTrainer, onnxTrainStep } = await import('../models/onnx-train/session');
  const { estimateTrainMemory, trainMemoryInput } = await import('../models/onnx-train/memory');
  await initBackend();
  const info = getBackbone(backbone);
  const classifier = attachHead(info.build({ inputSize: size, seed: 1 }), buildHead(info.featureDim, 5, { kind: 'linear' }, 1));
  unfreezeAll(classifier);
  const rssAfterModel = process.memoryUsage().rss;
  const trainer = await OnnxTrainer.create(classifier, { batchSize: batch, adam: { learningRate: 1e-4 } });
  const estimate = estimateTrainMemory(trainMemoryInput(trainer.spec, classifier.countParams()));
  let seed = 7;
  const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  const x = Float32Array.from({ length: batch * size * size * 3 }, () => random() * 2 - 1);
  const labels = new Float32Array(batch * 5);
  for (let i = 0; i < batch; i++) labels[i * 5 + (i % 5)] = 1;
  const masks = new Map<string, Float32Array>();
  for (const d of trainer.spec.dropouts) masks.set(d.layer, Float32Array.from({ length: d.tfShape.reduce((a, b) => a * b, 1) }, () => (random() < d.rate ? 0 : 1 / (1 - d.rate))));
  const t0 = performance.now();
  const step = await onnxTrainStep(trainer, { x, labels, classWeights: new Float32Array(5).fill(1), masks });
  const stepSeconds = (performance.now() - t0) / 1000;
  await trainer.dispose();
  void tf;
  return {
    backbone,
    params: classifier.countParams(),
    rssAfterModelMiB: mib(rssAfterModel),
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
    estimateMiB: mib(estimate.bytes),
    parts: Object.fromEntries(Object.entries(estimate.parts).map(([k, v]) => [k, mib(v)])),
    activationFloats: trainer.spec.activationFloats,
    workspaceFloats: trainer.spec.workspaceFloats,
    stepSeconds,
    loss: step.loss,
  };
}

async function main(): Promise<void> {
  const caseIndex = args.indexOf('--case');
  if (caseIndex >= 0) {
    const r = await measure(args[caseIndex + 1]);
    process.send!(r);
    return;
  }
  const backbones = args.filter((a, i) => !a.startsWith('--') && !args[i - 1]?.startsWith('--'));
  const list = backbones.length ? backbones : ['vgg16', 'seresnet152'];
  console.log(`peak RSS of one full-mode onnxruntime training step, ${size}², batch ${batch}, Adam (machine: ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ${os.cpus().length} cores)`);
  for (const backbone of list) {
    const r = await new Promise<Result>((resolve, reject) => {
      const child = fork(fileURLToPath(import.meta.url), ['--case', backbone, '--size', String(size), '--batch', String(batch)], {
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      });
      let result: Result | undefined;
      child.on('message', (m) => (result = m as Result));
      child.on('exit', (code) => (result ? resolve(result) : reject(new Error(`${backbone}: measuring process exited with ${code}`))));
    });
    const ratio = r.estimateMiB / r.peakRssMiB;
    console.log(
      `${backbone.padEnd(12)} ${(r.params / 1e6).toFixed(1)}M params: peak RSS ${r.peakRssMiB} MiB (model built: ${r.rssAfterModelMiB} MiB), ` +
        `estimate ${r.estimateMiB} MiB (${JSON.stringify(r.parts)}) = ${ratio.toFixed(2)}× measured; ` +
        `layer outputs ${(r.activationFloats / 1e6).toFixed(0)}M floats, largest conv-backward transient ${(r.workspaceFloats / 1e6).toFixed(0)}M floats; step ${r.stepSeconds.toFixed(1)} s, loss ${r.loss.toFixed(3)}`,
    );
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
