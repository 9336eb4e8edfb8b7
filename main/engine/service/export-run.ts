// export.run for the engine service: a run's best checkpoint exported to a folder, with what to do next.
import path from 'node:path';
import type { Events, Params, Results } from '../../api/contract';
import { getBackboneSpec } from '../../../models/catalog';
import { exportRun } from '../export';
import { readRun, runDir, type Project } from '../project';

export async function exportForUi(p: Project, params: Params<'export.run'>, onProgress: (progress: Events['export.progress']) => void): Promise<Results['export.run']> {
  const run = await readRun(p.dir, params.runId);
  const exported = await exportRun(runDir(p.dir, run.id), path.resolve(params.outDir), { onProgress, onnx: params.onnx ?? true });
  const usage = [
    `Exported the ${getBackboneSpec(exported.backbone).name} classifier of run ${run.id} (${exported.labels.length} classes: ${exported.labels.join(', ')}) to ${exported.outDir}.`,
    `Classify images with it: refit predict "${exported.outDir}" photos/ --top 3`,
    `Or load model.json with plain TF.js (@tensorflow/tfjs): labels, input size (${run.config.inputSize}×${run.config.inputSize}) and preprocessing are in refit.json; README.md in the folder has a complete example.`,
    ...((params.onnx ?? true) ? ['model.onnx runs in onnxruntime, OpenCV DNN and other ONNX runtimes: its input layout and the exact preprocessing are in refit.json ("onnx").'] : []),
  ].join('\n');
  return {
    outDir: exported.outDir,
    files: exported.files.map((f) => ({ path: f.path, bytes: f.bytes })),
    totalBytes: exported.totalBytes,
    usage,
  };
}
