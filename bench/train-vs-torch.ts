// npm run bench:train-vs-torch [-- --rounds 3 --steps 2 --batch 16 --size 224 --only finetune|full --no-torch --no-tfjs --no-profile --torch-passive]
// Training speed, same machine, same run: Refit's onnxruntime trainer (models/onnx-train: the training
// graph in onnxruntime-node, Adam on Float32Arrays) vs Refit's TF.js trainer on the wasm backend (today's
// engine) vs PyTorch 1.13 (Debian python3-torchvision under /usr/bin/python3, installed with apt-get if
// missing; all cores). Two workloads, batch 16 at 224², random pixels (speed does not depend on them):
//   finetune — ResNet-50, stem…stage3 frozen (forward only: onnxruntime in Refit, no_grad in PyTorch),
//              stage4 + linear head trained with Adam, BN frozen (eval)
//   full     — ResNet-18, every layer trained with Adam, BN in training mode
// The machine is shared and noisy, so Refit and PyTorch alternate: both models are built once (PyTorch in
// a child process that takes "run N steps" on stdin), warmed up, then --rounds rounds of --steps steps of
// Refit followed by --steps steps of PyTorch. Reported: median seconds per step → images/s, and the
// median of the per-round ratios. TF.js (minutes per step) runs once after. Then one profiled onnxruntime
// step per workload (onnxruntime's enableProfiling) summed by operator type.
import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../main/engine/backend';
import { createForwardPass } from '../main/engine/onnx-runtime';
import { microBatchSize, trainStep } from '../main/engine/training/step';
import { freezeBackbone, lastStages } from '../models/freeze';
import { attachHead, buildHead, disposeAll } from '../models/heads';
import { getBackbone } from '../models/registry';
import { splitAtStages } from '../models/trunk';
import { OnnxTrainer, onnxTrainStep } from '../models/onnx-train/session';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    steps: { type: 'string', default: '2' },
    batch: { type: 'string', default: '16' },
    size: { type: 'string', default: '224' },
    only: { type: 'string' },
    'no-torch': { type: 'boolean', default: false },
    'no-tfjs': { type: 'boolean', default: false },
    'no-profile': { type: 'boolean', default: false },
    // On a loaded machine PyTorch's OpenMP threads spin-wait and lose their time slices (as bench/infer.ts).
    'torch-passive': { type: 'boolean', default: false },
  },
});
const ROUNDS = Number(values.rounds);
const STEPS = Number(values.steps);
const BATCH = Number(values.batch);
const SIZE = Number(values.size);
const CLASSES = 5;
const LR = 1e-4;

type Workload = 'finetune' | 'full';
const workloads = (['finetune', 'full'] as Workload[]).filter((w) => !values.only || w === values.only);

interface Rate {
  imagesPerSec: number;
  secondsPerStep: number;
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
/** Images/s from the median step time. */
const rate = (seconds: number[]): Rate => {
  const m = median(seconds);
  return { imagesPerSec: BATCH / m, secondsPerStep: m };
};

function randomBatch(seed: number): { x: Float32Array; labels: Float32Array; classWeights: Float32Array } {
  let s = seed;
  const r = () => (s = (s * 16807) % 2147483647) / 2147483647;
  const x = Float32Array.from({ length: BATCH * SIZE * SIZE * 3 }, () => r() * 255 - 128);
  const labels = new Float32Array(BATCH * CLASSES);
  for (let i = 0; i < BATCH; i++) labels[i * CLASSES + (i % CLASSES)] = 1;
  return { x, labels, classWeights: new Float32Array(CLASSES).fill(1) };
}

/** The classifier and, in fine-tune mode, its frozen trunk and trainable top (as the network phase splits it). */
function model(w: Workload): { classifier: tf.LayersModel; trunk?: tf.LayersModel; top: tf.LayersModel } {
  const info = getBackbone(w === 'finetune' ? 'resnet50' : 'resnet18');
  const classifier = attachHead(info.build({ inputSize: SIZE, seed: 1 }), buildHead(info.featureDim, CLASSES, { kind: 'linear' }, 1));
  if (w === 'full') return { classifier, top: classifier };
  const stages = lastStages(info, 1);
  freezeBackbone(classifier, info, { trainableStages: stages });
  classifier.layers.filter((l) => l.getClassName() === 'BatchNormalization').forEach((l) => (l.trainable = false));
  const { trunk, top } = splitAtStages(classifier, info, stages);
  return { classifier, trunk, top };
}

async function time(steps: number, step: () => Promise<void>): Promise<number[]> {
  await step(); // warm-up
  const out: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await step();
    out.push((performance.now() - t0) / 1000);
  }
  return out;
}

interface ProfileRow {
  op: string;
  ms: number;
  share: number;
  count: number;
}

/** Refit's onnxruntime trainer on one workload, ready to step (the frozen trunk's forward pass inside the step). */
async function refitOnnx(w: Workload): Promise<{ step: () => Promise<number>; trunkSeconds: () => number; dispose: () => Promise<void> }> {
  const { classifier, trunk, top } = model(w);
  const batch = randomBatch(3);
  const forward = trunk ? await createForwardPass(trunk, { inputSize: SIZE }) : null;
  const trainer = await OnnxTrainer.create(top, { batchSize: BATCH, adam: { learningRate: LR } });
  let trunkSeconds = 0;
  return {
    step: async () => {
      const t0 = performance.now();
      let x = batch.x;
      if (forward) {
        x = await forward.runFloat32(batch.x, BATCH);
        trunkSeconds += (performance.now() - t0) / 1000;
      }
      await onnxTrainStep(trainer, { ...batch, x });
      return (performance.now() - t0) / 1000;
    },
    trunkSeconds: () => trunkSeconds,
    dispose: async () => {
      await trainer.dispose();
      forward?.dispose();
      disposeAll(classifier);
    },
  };
}

/** Two profiled training-graph steps, summed by operator (per step: summarizeProfile halves the totals). */
async function profileOnnx(w: Workload, profileDir: string): Promise<ProfileRow[]> {
  const { classifier, trunk, top } = model(w);
  const batch = randomBatch(3);
  const forward = trunk ? await createForwardPass(trunk, { inputSize: SIZE }) : null;
  const x = forward ? await forward.runFloat32(batch.x, BATCH) : batch.x;
  forward?.dispose();
  const prefix = path.join(profileDir, `refit-${w}`);
  const profiled = await OnnxTrainer.create(top, { batchSize: BATCH, adam: { learningRate: LR }, profilePrefix: prefix });
  await onnxTrainStep(profiled, { ...batch, x });
  await onnxTrainStep(profiled, { ...batch, x });
  await profiled.endProfiling();
  await profiled.dispose();
  disposeAll(classifier);
  const files = (await readdir(profileDir)).filter((f) => f.startsWith(`refit-${w}`) && f.endsWith('.json'));
  if (files.length !== 1) throw new Error(`expected one onnxruntime profile for ${w}, found ${files.length}`);
  const profile = await summarizeProfile(path.join(profileDir, files[0]));
  await rm(path.join(profileDir, files[0]), { force: true });
  return profile;
}

async function refitTfjs(w: Workload): Promise<Rate> {
  const { classifier, trunk, top } = model(w);
  const batch = randomBatch(3);
  const forward = trunk ? await createForwardPass(trunk, { inputSize: SIZE }) : null;
  const variables = top.trainableWeights.map((v) => v.read() as tf.Variable);
  // As the trainer: on wasm a batch that would not fit the heap goes through in slices.
  const micro = microBatchSize(top, BATCH, tf.getBackend(), classifier.countParams(), classifier.name);
  const optimizer = tf.train.adam(LR);
  const y = tf.tensor2d(batch.labels, [BATCH, CLASSES]);
  const cw = tf.tensor1d(batch.classWeights);
  const step = async () => {
    const pixels = tf.tensor4d(batch.x, [BATCH, SIZE, SIZE, 3]);
    const x = forward ? await forward.run(pixels) : pixels;
    if (forward) pixels.dispose();
    await trainStep(optimizer, variables, (xs) => top.apply(xs, { training: true }) as tf.Tensor2D, x, y, cw, micro);
    x.dispose();
  };
  const seconds = await time(w === 'full' ? Math.min(STEPS, 2) : STEPS, step);
  tf.dispose([y, cw]);
  optimizer.dispose();
  forward?.dispose();
  disposeAll(classifier);
  return rate(seconds);
}

/** onnxruntime's profile (chrome-trace JSON) summed per operator type over the run's node events. */
async function summarizeProfile(file: string): Promise<ProfileRow[]> {
  const events = JSON.parse(await readFile(file, 'utf8')) as { cat: string; name: string; dur: number; args?: { op_name?: string } }[];
  const byOp = new Map<string, { us: number; count: number }>();
  let total = 0;
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || !e.args?.op_name) continue;
    const row = byOp.get(e.args.op_name) ?? { us: 0, count: 0 };
    row.us += e.dur;
    row.count++;
    byOp.set(e.args.op_name, row);
    total += e.dur;
  }
  return [...byOp.entries()]
    .map(([op, r]) => ({ op, ms: r.us / 1000 / 2, share: r.us / total, count: r.count / 2 })) // two steps profiled
    .sort((a, b) => b.ms - a.ms);
}

// The PyTorch peer: builds one workload, then answers each line "N" on stdin with the seconds of N
// steps (JSON); the first step it takes is a warm-up, not reported.
const TORCH_SCRIPT = String.raw`
import json, os, sys, time
import torch, torchvision
torch.set_num_threads(os.cpu_count())
batch, size, classes, which = int(sys.argv[1]), int(sys.argv[2]), 5, sys.argv[3]
torch.manual_seed(0)
x = torch.rand(batch, 3, size, size) * 255 - 128
y = torch.arange(batch) % classes
if which == 'finetune':
    m = torchvision.models.resnet50(num_classes=classes)
    frozen = torch.nn.Sequential(m.conv1, m.bn1, m.relu, m.maxpool, m.layer1, m.layer2, m.layer3).eval()
    for p in frozen.parameters(): p.requires_grad_(False)
    top = m.layer4
    top.eval()  # BN frozen, as Refit's fine-tune recipe
    params = list(top.parameters()) + list(m.fc.parameters())
    opt = torch.optim.Adam(params, lr=1e-4)
    def step():
        with torch.no_grad():
            f = frozen(x)
        logits = m.fc(torch.flatten(m.avgpool(top(f)), 1))
        loss = torch.nn.functional.cross_entropy(logits, y)
        opt.zero_grad(); loss.backward(); opt.step()
else:
    m = torchvision.models.resnet18(num_classes=classes).train()
    opt = torch.optim.Adam(m.parameters(), lr=1e-4)
    def step():
        loss = torch.nn.functional.cross_entropy(m(x), y)
        opt.zero_grad(); loss.backward(); opt.step()
step()
print(json.dumps({'ready': True, 'versions': {'torch': torch.__version__, 'torchvision': torchvision.__version__, 'threads': torch.get_num_threads()}}), flush=True)
for line in sys.stdin:
    ts = []
    for _ in range(int(line)):
        t0 = time.perf_counter(); step(); ts.append(time.perf_counter() - t0)
    print(json.dumps({'seconds': ts}), flush=True)
`;

function ensureTorch(): boolean {
  const probe = spawnSync('/usr/bin/python3', ['-c', 'import torch, torchvision'], { stdio: 'ignore' });
  if (probe.status === 0) return true;
  console.log('PyTorch missing under /usr/bin/python3: apt-get install -y python3-torchvision …');
  const sudo = process.getuid?.() === 0 ? [] : ['sudo'];
  const run = (args: string[]) => spawnSync(sudo[0] ?? args[0], sudo.length ? args : args.slice(1), { stdio: 'inherit' });
  run(['apt-get', 'update']);
  run(['apt-get', 'install', '-y', 'python3-torchvision']);
  return spawnSync('/usr/bin/python3', ['-c', 'import torch, torchvision'], { stdio: 'ignore' }).status === 0;
}

/** A running PyTorch peer for one workload. */
class TorchPeer {
  private readonly lines: AsyncIterator<string>;
  private constructor(private readonly child: ChildProcessByStdio<Writable, Readable, null>) {
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }

  versions: Record<string, unknown> = {};

  static async start(work: string, w: Workload): Promise<TorchPeer> {
    const script = path.join(work, 'torch_train.py');
    await writeFile(script, TORCH_SCRIPT);
    const env = values['torch-passive'] ? { OMP_WAIT_POLICY: 'PASSIVE' } : {};
    const child = spawn('/usr/bin/python3', [script, String(BATCH), String(SIZE), w], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
    const peer = new TorchPeer(child);
    peer.versions = (await peer.next()).versions as Record<string, unknown>;
    return peer;
  }

  private async next(): Promise<Record<string, unknown>> {
    const { value, done } = await this.lines.next();
    if (done) throw new Error(`PyTorch peer exited (code ${this.child.exitCode})`);
    return JSON.parse(value) as Record<string, unknown>;
  }

  async steps(n: number): Promise<number[]> {
    this.child.stdin.write(`${n}\n`);
    return (await this.next()).seconds as number[];
  }

  stop(): void {
    this.child.stdin.end();
  }
}

async function main(): Promise<void> {
  await initBackend();
  const backend = tf.getBackend();
  const work = await mkdtemp(path.join(os.tmpdir(), 'refit-train-vs-torch-'));
  const label = { finetune: `fine-tune top of ResNet-50 (stage4 + head; stem…stage3 frozen), ${SIZE}², batch ${BATCH}`, full: `full ResNet-18, ${SIZE}², batch ${BATCH}` };
  const results: Record<string, unknown> = { machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, tfjsBackend: backend, loadAverage: os.loadavg() }, rounds: ROUNDS, steps: STEPS };
  try {
    const withTorch = !values['no-torch'] && ensureTorch();
    const rows: string[][] = [];
    for (const w of workloads) {
      const refit = await refitOnnx(w);
      const peer = withTorch ? await TorchPeer.start(work, w) : null;
      await refit.step(); // warm-up (the peer warmed up when it started)
      const onnxSeconds: number[] = [];
      const torchSeconds: number[] = [];
      const roundRatios: number[] = [];
      const trunk0 = refit.trunkSeconds();
      for (let r = 0; r < ROUNDS; r++) {
        const mine: number[] = [];
        for (let i = 0; i < STEPS; i++) mine.push(await refit.step());
        onnxSeconds.push(...mine);
        if (peer) {
          const theirs = await peer.steps(STEPS);
          torchSeconds.push(...theirs);
          roundRatios.push(median(theirs) / median(mine));
        }
        console.log(`  ${w} round ${r + 1}/${ROUNDS}: Refit ${mine.map((t) => t.toFixed(2)).join(' ')} s/step${peer ? `, PyTorch ${torchSeconds.slice(-STEPS).map((t) => t.toFixed(2)).join(' ')}` : ''}`);
      }
      const trunkShare = w === 'finetune' ? (refit.trunkSeconds() - trunk0) / onnxSeconds.reduce((a, b) => a + b, 0) : undefined;
      await refit.dispose();
      if (peer) {
        results.torchVersions = peer.versions;
        peer.stop();
      }
      const onnx = rate(onnxSeconds);
      const torchRate = peer ? rate(torchSeconds) : null;
      const ratio = roundRatios.length ? median(roundRatios) : null;
      let wasm: Rate | null = null;
      if (!values['no-tfjs']) {
        try {
          wasm = await refitTfjs(w);
        } catch (err) {
          console.log(`TF.js ${backend} failed on ${w}: ${(err as Error).message.split('\n')[0]}`);
        }
      }
      const profile = values['no-profile'] ? undefined : await profileOnnx(w, work);
      results[w] = { onnx, onnxSeconds, tfjs: wasm, torch: torchRate, torchSeconds, roundRatios, ratio, trunkShare, profile };
      const fmt = (r: Rate | null | undefined) => (r ? r.imagesPerSec.toFixed(2) : '—');
      const wasmRatio = wasm && torchRate ? `${(wasm.imagesPerSec / torchRate.imagesPerSec).toFixed(2)}×` : '—';
      rows.push([label[w], fmt(onnx), ratio ? `${ratio.toFixed(2)}×` : '—', fmt(wasm), wasmRatio, fmt(torchRate)]);
      console.log(`\n${label[w]}: Refit onnxruntime ${fmt(onnx)} img/s${trunkShare !== undefined ? ` (frozen trunk forward ${(trunkShare * 100).toFixed(0)}% of a step)` : ''}, TF.js ${backend} ${fmt(wasm)}, PyTorch ${fmt(torchRate)}; per-round ratios ${roundRatios.map((x) => x.toFixed(2)).join(' ')}`);
      if (profile) {
        console.log(`  onnxruntime profile of one training-graph step (${label[w]}):`);
        for (const p of profile.slice(0, 14)) console.log(`    ${p.op.padEnd(22)} ${p.ms.toFixed(0).padStart(7)} ms  ${(p.share * 100).toFixed(1).padStart(5)}%  (${p.count} nodes)`);
      }
    }
    console.log(`\nimages/s from median step times (higher is better); Refit's ratio is the median of ${ROUNDS} alternating rounds' ratios to PyTorch; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    const head = ['work', 'Refit onnxruntime', 'ratio', `Refit TF.js (${backend})`, 'ratio', 'PyTorch'];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    for (const r of [head, ...rows]) console.log(r.map((c, i) => c.padEnd(widths[i])).join('  '));
    console.log(JSON.stringify(results));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
