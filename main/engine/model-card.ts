// README.md of an exported model: a short model card a person can read, made from refit.json.
import type { Preprocessing } from '../../models/types';
import { MANIFEST_FILE, toPreprocessing, type ManifestOnnx, type WrittenManifest } from './refit-manifest';

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** 95% Wilson score interval of a proportion measured on n samples. */
export function wilsonInterval(p: number, n: number): [number, number] {
  if (n <= 0) return [0, 1];
  const z = 1.96;
  const denom = 1 + (z * z) / n;
  const centre = (p + (z * z) / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / denom;
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/** Escapes a label for a Markdown table cell. */
const cell = (s: string) => s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\n/g, ' ');

function classTable(m: WrittenManifest): string[] {
  const perClass = new Map((m.metrics?.perClass ?? []).map((c) => [c.name, c]));
  const rows = m.labels.map((label) => {
    const c = perClass.get(label);
    return c
      ? `| ${cell(label)} | ${pct(c.precision)} | ${pct(c.recall)} | ${pct(c.f1)} | ${c.support} |`
      : `| ${cell(label)} | – | – | – | – |`;
  });
  return ['| Class | Precision | Recall | F1 | Validation images |', '|---|---:|---:|---:|---:|', ...rows];
}

/** The preprocessing as a TF.js expression on `square` ([size, size, 3] RGB 0..255). */
function preprocessingCode(p: Preprocessing): string {
  switch (p.mode) {
    case 'caffe':
      return `square.reverse(-1).sub([${p.mean.join(', ')}])`;
    case 'torch':
      return `square.div(255).sub([${p.mean.join(', ')}]).div([${p.std.join(', ')}])`;
    case 'tf':
      return 'square.div(127.5).sub(1)';
  }
}

/** ": torchvision `torchvision-v1` (resnet18-f37072fd.pth, architecture resnet-v1.5, ImageNet top-1 69.8% as published)". */
function weightSetText(m: WrittenManifest): string {
  const w = m.weightSet;
  if (!w) return '';
  return `: ${w.publisher} \`${w.id}\` (${w.fileName}, architecture ${w.variant}, ImageNet top-1 ${w.top1.toFixed(1)}% as published)`;
}

function trainingLines(m: WrittenManifest): string[] {
  const t = m.training;
  const c = t.config;
  const mode = { head: 'only the new classification head was trained (backbone frozen)', finetune: 'the head, then the last stage(s) of the backbone were fine-tuned', full: 'the whole network was trained' }[c.mode] ?? c.mode;
  const lines = [
    `- Backbone: ${m.backbone.name} (\`${m.backbone.id}\`), ${m.weights === 'imagenet' ? 'starting from ImageNet weights' : 'starting from random weights'}${weightSetText(m)}.`,
    ...(m.weightSet ? [`- Weights licence: ${m.weightSet.licence}.`] : []),
    `- Mode \`${c.mode}\`: ${mode}.`,
    `- Input: ${m.inputSize}×${m.inputSize} pixels; ${c.augment ? 'with' : 'without'} data augmentation; batch size ${c.batchSize}` +
      (c.learningRate !== undefined ? `, learning rate ${c.learningRate}` : '') +
      `; up to ${c.epochs} epochs with early stopping (patience ${c.patience}).`,
  ];
  if (t.trainImages !== undefined && t.valImages !== undefined) {
    lines.push(`- Data: ${t.trainImages} training and ${t.valImages} validation images` + (c.validationFolder ? ' (validation from a separate folder).' : ` (${pct(c.valSplit)} of each class held out).`));
  }
  if (t.bestEpoch != null) lines.push(`- Exported weights: epoch ${t.bestEpoch}${t.epochsRun ? ` of ${t.epochsRun} run` : ''} (lowest validation loss).`);
  lines.push(`- Dataset fingerprint: \`${m.datasetFingerprint}\`.`);
  return lines;
}

function accuracyLines(m: WrittenManifest): string[] {
  if (!m.metrics) return ['No validation metrics were recorded for this model.'];
  const n = m.training.valImages ?? m.metrics.perClass.reduce((s, c) => s + c.support, 0);
  const [lo, hi] = wilsonInterval(m.metrics.valAccuracy, n);
  return [
    `Validation accuracy: **${pct(m.metrics.valAccuracy)}** on ${n} images (95% interval ${pct(lo)}–${pct(hi)}), validation loss ${m.metrics.valLoss.toFixed(4)}.`,
  ];
}

function limitationLines(m: WrittenManifest): string[] {
  const lines = [
    `- It only knows these ${m.labels.length} classes. Every image gets one of them, even an image of something else entirely; a low top probability is a hint, not a guarantee.`,
    '- It learned from the images it was given. Photos that look different (other cameras, lighting, backgrounds, framing) may be classified less well than the validation numbers suggest.',
  ];
  const small = (m.metrics?.perClass ?? []).filter((c) => c.support < 10).map((c) => c.name);
  if (small.length) lines.push(`- Few validation images for ${small.join(', ')}: the numbers for ${small.length === 1 ? 'that class' : 'those classes'} are rough estimates.`);
  if (m.weights !== 'imagenet') lines.push('- The backbone started from random weights, so with a small dataset it generalises less well than a pretrained one would.');
  return lines;
}

function usageLines(m: WrittenManifest): string[] {
  const p = toPreprocessing(m.preprocessing);
  return [
    'With Refit:',
    '',
    '```sh',
    'refit predict path/to/this-folder photo.jpg more-photos/ --top 3',
    'refit predict path/to/this-folder photos/ --json > predictions.json',
    '```',
    '',
    `With plain TF.js (\`@tensorflow/tfjs\`; serve this folder over HTTP, or use \`file://\` URLs with \`@tensorflow/tfjs-node\`). ` +
      'The model takes preprocessed input and outputs one probability per class, in the order of `labels` in refit.json:',
    '',
    '```js',
    "import * as tf from '@tensorflow/tfjs';",
    '',
    "const model = await tf.loadLayersModel('http://localhost:8080/model.json');",
    `const { labels, inputSize } = await (await fetch('http://localhost:8080/${MANIFEST_FILE}')).json(); // inputSize: ${m.inputSize}`,
    '',
    '// image: an <img>, <canvas>, ImageBitmap or ImageData; draw transparent images onto white first.',
    'const probabilities = tf.tidy(() => {',
    '  const rgb = tf.browser.fromPixels(image).toFloat(); // [h, w, 3], RGB 0..255',
    '  const [h, w] = rgb.shape;',
    '  const scale = inputSize / Math.max(h, w); // fit inside the square, keep the aspect ratio',
    '  const rh = Math.max(1, Math.round(h * scale)), rw = Math.max(1, Math.round(w * scale));',
    '  const top = Math.floor((inputSize - rh) / 2), left = Math.floor((inputSize - rw) / 2);',
    '  const square = tf.image.resizeBilinear(rgb, [rh, rw])',
    '    .pad([[top, inputSize - rh - top], [left, inputSize - rw - left], [0, 0]], 255); // white padding',
    `  const x = ${preprocessingCode(p)};`,
    '  return model.predict(x.expandDims(0)).dataSync();',
    '});',
    'const best = labels[probabilities.indexOf(Math.max(...probabilities))];',
    '```',
  ];
}

function onnxLines(o: ManifestOnnx): string[] {
  const shape = `[${o.input.shape.map((d) => d ?? 'batch').join(', ')}]`;
  return [
    `\`${o.file}\` holds the same classifier as an ONNX graph (opset ${o.opset}), for onnxruntime and other ONNX runtimes.`,
    '',
    `- Input \`${o.input.name}\`: ${o.input.dtype} ${shape}, layout ${o.input.layout}; any batch size.`,
    `- Output \`${o.output.name}\`: ${o.output.dtype} [batch, ${o.output.shape[1]}], softmax probabilities in the order of \`labels\` in refit.json.`,
    `- ${o.note}`,
  ];
}

export function renderModelCard(m: WrittenManifest): string {
  const title = `${m.backbone.name} image classifier: ${m.labels.join(', ')}`;
  const sections = [
    `# ${title}`,
    `Exported by Refit ${m.refitVersion} on ${m.created}. It sorts images into ${m.labels.length} classes: ${m.labels.map((l) => `**${l}**`).join(', ')}.`,
    '## Accuracy',
    ...accuracyLines(m),
    classTable(m).join('\n'),
    '## How it was trained',
    trainingLines(m).join('\n'),
    '## Input',
    `${m.preprocessing.description} The network takes a float32 tensor of shape [batch, ${m.inputSize}, ${m.inputSize}, 3] (NHWC, ${m.preprocessing.channelOrder}) and ends in a softmax over the classes.`,
    ...(m.onnx ? ['## ONNX', onnxLines(m.onnx).join('\n')] : []),
    '## Limitations',
    limitationLines(m).join('\n'),
    '## How to use it',
    usageLines(m).join('\n'),
    '## Files',
    [
      `- \`${MANIFEST_FILE}\`: labels, preprocessing, training settings, metrics, and the size and SHA-256 of every file.`,
      '- `model.json` and `*.bin`: the TF.js layers model (topology and weights).',
      ...(m.onnx ? [`- \`${m.onnx.file}\`: the same classifier as an ONNX graph (opset ${m.onnx.opset}).`] : []),
      '- `README.md`: this card.',
    ].join('\n'),
  ];
  return sections.join('\n\n') + '\n';
}
