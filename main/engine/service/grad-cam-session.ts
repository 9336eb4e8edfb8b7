// Grad-CAM for the engine service: a run's best checkpoint cut at its last convolutional stage, loaded
// once and kept until another run is asked for, the project changes, or the run trains again. One
// image at a time, yielding to the event loop between images, so other requests are not held up long.
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import type { Params } from '../../api/contract';
import { errorText } from '../../api/excerpt';
import type { GradCamRow } from '../../api/grad-cam';
import type { Preprocessing } from '../../api/models';
import { getBackboneSpec } from '../../../models/catalog';
import { disposeAll } from '../../../models/heads';
import { loadModel } from '../checkpoint';
import { contentBox, gradCamInput, gradCamMap, gradCamModel, type GradCamModel } from '../grad-cam';
import { runDir, type Project } from '../project';
import { classifierRun, decodeUpload, MAX_UPLOAD_TOTAL_BYTES } from './classifier-session';
import { serialQueue } from './queue';

interface LoadedGradCam {
  key: string;
  runId: string;
  classifier: tf.LayersModel;
  model: GradCamModel;
  labels: string[];
  preprocessing: Preprocessing;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export class GradCamSession {
  private loaded: LoadedGradCam | null = null;
  private closed = false;
  private readonly queue = serialQueue();

  constructor(private readonly requireProject: () => Project) {}

  /** Frees the loaded model (all of them, or only run `runId`'s, whose checkpoint may have changed). */
  drop(runId?: string): void {
    if (!this.loaded || (runId !== undefined && this.loaded.runId !== runId)) return;
    disposeAll(this.loaded.classifier);
    this.loaded = null;
  }

  close(): void {
    this.closed = true;
    this.drop();
  }

  private async load(runId: string | undefined): Promise<LoadedGradCam> {
    const p = this.requireProject();
    const run = await classifierRun(p, runId);
    const best = path.join(runDir(p.dir, run.id), 'best');
    const key = `${p.dir}\0${run.id}\0${(await stat(path.join(best, 'model.json'))).mtimeMs}`;
    if (this.loaded?.key === key) return this.loaded;
    let classifier: tf.LayersModel;
    try {
      classifier = await loadModel(best);
    } catch (err) {
      throw new Error(`Cannot load the model of run ${run.id} from ${best}: ${errorText(err)}. Train again or choose another run.`);
    }
    let model: GradCamModel;
    try {
      model = gradCamModel(classifier, getBackboneSpec(run.config.backbone));
    } catch (err) {
      disposeAll(classifier);
      throw err;
    }
    const next: LoadedGradCam = { key, runId: run.id, classifier, model, labels: run.labels, preprocessing: run.preprocessing };
    if (this.closed) {
      disposeAll(classifier);
      throw new Error('the engine is shutting down');
    }
    this.drop();
    this.loaded = next;
    return next;
  }

  private async row(loaded: LoadedGradCam, file: string, classIndex: number | undefined): Promise<GradCamRow> {
    try {
      // The decode first: its errors name the file and say what is wrong with it.
      const input = await gradCamInput(file, loaded.model.inputSize, loaded.preprocessing);
      const content = await contentBox(file);
      const map = await gradCamMap(loaded.model, input, classIndex);
      return {
        file,
        target: loaded.labels[map.classIndex],
        predicted: { label: loaded.labels[map.predictedIndex], probability: map.probability },
        map: Array.from(map.values),
        height: map.height,
        width: map.width,
        content,
      };
    } catch (err) {
      return { file, error: errorText(err) };
    }
  }

  private async rows(loaded: LoadedGradCam, files: string[], classIndex: number | undefined): Promise<GradCamRow[]> {
    const rows: GradCamRow[] = [];
    for (const file of files) {
      rows.push(await this.row(loaded, file, classIndex));
      await nextTurn();
    }
    return rows;
  }

  maps(params: Params<'classify.gradCam'>): Promise<GradCamRow[]> {
    return this.queue(async () => {
      const loaded = await this.load(params.runId);
      let classIndex: number | undefined;
      if (params.className !== undefined) {
        classIndex = loaded.labels.indexOf(params.className);
        if (classIndex < 0) throw new Error(`classify.gradCam: className "${params.className}" is not a class of run ${loaded.runId}; its classes are ${loaded.labels.join(', ')}`);
      }
      if (params.paths) return this.rows(loaded, params.paths.map((f) => path.resolve(f)), classIndex);
      return this.uploaded(loaded, params.images!, classIndex);
    });
  }

  /** Uploaded images go through temporary files; rows and errors name them as the UI does. */
  private async uploaded(loaded: LoadedGradCam, images: { name: string; data: string }[], classIndex: number | undefined): Promise<GradCamRow[]> {
    const decoded = images.map((image) => decodeUpload(image.data));
    const total = decoded.reduce((sum, d) => sum + (typeof d === 'string' ? 0 : d.byteLength), 0);
    if (total > MAX_UPLOAD_TOTAL_BYTES) {
      throw new Error(`classify.gradCam: ${(total / 1024 / 1024).toFixed(0)} MB of images in one request; send at most ${MAX_UPLOAD_TOTAL_BYTES / 1024 / 1024} MB at a time`);
    }
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-gradcam-'));
    try {
      const rows: GradCamRow[] = [];
      for (const [i, data] of decoded.entries()) {
        const name = images[i].name;
        if (typeof data === 'string') {
          rows.push({ file: name, error: `${name}: ${data}` });
          continue;
        }
        const file = path.join(tmp, `${i}${path.extname(name).toLowerCase().replace(/[^.a-z0-9]/g, '')}`);
        await writeFile(file, data);
        const row = await this.row(loaded, file, classIndex);
        rows.push({ ...row, file: name, ...(row.error !== undefined ? { error: row.error.split(file).join(name) } : {}) });
        await nextTurn();
      }
      return rows;
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
}
