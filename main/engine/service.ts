// The engine behind the contract (main/api/contract.ts): one object that every host drives — the
// Electron main process through IPC, the browser host through its WebSocket, tests directly. It
// validates each request and hands it to the session that owns that part of the state:
//   ProjectSession     the open project, its last scan, recent projects, the Data screen's pages
//   TrainingSession    the one training run in progress (in a child process), runs, model cards
//   ClassifierSession  the Classify screen's loaded model
//   WeightsSession     ImageNet weight sets: list, download (progress, cancel), import
// and reports their events to its listeners.
import os from 'node:os';
import path from 'node:path';
import { methodSchemas, parseParams, type EventName, type Events, type MethodName, type Params, type Results } from '../api/contract';
import { quoteExcerpt } from '../api/excerpt';
import { currentBackend, initBackend } from './backend';
import { trainerReport } from './training/train-engine';
import { REFIT_VERSION } from './version';
import type { StartOptions } from './train-process';
import { ClassifierSession } from './service/classifier-session';
import { exportForUi } from './service/export-run';
import { GradCamSession } from './service/grad-cam-session';
import { ProjectSession } from './service/project-session';
import { TrainingSession } from './service/training-session';
import { WeightsSession } from './service/weights-session';
import { summarizeRun } from './service/run-summary';
import { renameRun } from './project';
import { RefitError } from '../api/errors';

export { MAX_UPLOAD_IMAGE_BYTES, MAX_UPLOAD_TOTAL_BYTES } from './service/classifier-session';

export type ServiceListener = (event: EventName, payload: Events[EventName]) => void;

export interface EngineServiceOptions {
  host: 'electron' | 'browser';
  /** How the training process is made (Electron passes one built on utilityProcess); default: child_process.fork. */
  spawnTraining?: StartOptions['spawn'];
  /** The recent-projects list; default: <user config dir>/refit/recent-projects.json. */
  recentFile?: string;
}

export interface EngineService {
  /** Runs `method` with `params` (validated first); rejects with an Error whose message says what is wrong and what to do. */
  call(method: string, params: unknown): Promise<unknown>;
  /** Listens to every event; returns the function that stops listening. */
  on(listener: ServiceListener): () => void;
  /** Cancels a training in progress (killing it if it does not stop within a few seconds) and frees the loaded model. */
  dispose(): Promise<void>;
}


export function defaultConfigDir(): string {
  if (process.env.XDG_CONFIG_HOME) return process.env.XDG_CONFIG_HOME;
  if (process.platform === 'win32' && process.env.APPDATA) return process.env.APPDATA;
  if (process.platform === 'darwin') return path.join(os.homedir(), 'Library', 'Application Support');
  return path.join(os.homedir(), '.config');
}

type Handlers = { [M in MethodName]: (params: Params<M>) => Promise<Results[M]> };

export function createEngineService(options: EngineServiceOptions): EngineService {
  const listeners = new Set<ServiceListener>();
  let disposed = false;

  function emit<E extends EventName>(event: E, payload: Events[E]): void {
    for (const listener of [...listeners]) {
      try {
        listener(event, payload);
      } catch {
        // A failing listener (a closed window, a dropped socket) must not break the engine or the others.
      }
    }
  }

  const projects: ProjectSession = new ProjectSession({
    recentFile: options.recentFile ?? path.join(defaultConfigDir(), 'refit', 'recent-projects.json'),
    onScanProgress: (progress) => emit('scan.progress', progress),
    onProjectChanged: () => {
      classifier.drop();
      gradCam.drop();
    },
  });
  const classifier = new ClassifierSession(() => projects.require(), (progress) => emit('classify.progress', progress));
  const gradCam = new GradCamSession(() => projects.require());
  const training = new TrainingSession({
    projects,
    ...(options.spawnTraining ? { spawn: options.spawnTraining } : {}),
    onEvent: (payload) => emit('training.event', payload),
    onEnded: (payload) => {
      // The run's best checkpoint may have changed (a resumed run): load it afresh next time.
      classifier.drop(payload.runId);
      gradCam.drop(payload.runId);
      emit('training.ended', payload);
    },
  });

  const weights = new WeightsSession((progress) => emit('weights.progress', progress));

  const handlers: Handlers = {
    'app.info': async () => {
      const backend = currentBackend() ?? (await initBackend());
      return { version: REFIT_VERSION, backend: { ...backend, trainer: await trainerReport(backend.name) }, host: options.host, project: projects.view() };
    },
    'project.open': (params) => projects.open(params),
    'project.current': async () => projects.dataset(),
    'project.recent': () => projects.recent(),
    'project.rename': (params) => projects.rename(params.name),
    'project.move': (params) => {
      const { runId } = training.status();
      if (runId) throw new RefitError('busy', `A training run is in progress (run ${runId}): the project cannot move while it writes into its folder; wait until it ends, or cancel it`);
      return projects.move(params.to);
    },
    'dataset.addFolders': (params) => projects.addFolders(params.folders),
    'dataset.scan': () => projects.scan(),
    'dataset.renameClass': (params) => projects.renameClass(params.from, params.to),
    'dataset.removeClass': (params) => projects.removeClass(params.name),
    'dataset.setExcluded': (params) => projects.setExcluded(params.file, params.excluded),
    'dataset.images': (params) => projects.images(params),
    'dataset.thumbnail': (params) => projects.thumbnail(params),
    'fs.listDir': (params) => projects.listDir(params),
    'fs.makeDir': (params) => projects.makeDir(params),
    'models.list': () => training.models(),
    'training.start': (params) => training.start(params),
    'training.cancel': async () => training.cancel(),
    'training.status': async () => training.status(),
    'runs.list': () => training.runs(),
    'runs.get': (params) => training.run(params.runId),
    'runs.rename': async (params) => {
      if (training.status().runId === params.runId) throw new RefitError('busy', `Run ${params.runId} is still training: rename it once it has ended`);
      return summarizeRun(await renameRun(projects.require().dir, params.runId, params.name));
    },
    'classify.files': (params) => classifier.files(params),
    'classify.upload': (params) => classifier.upload(params),
    'classify.gradCam': (params) => gradCam.maps(params),
    'export.run': (params) => exportForUi(projects.require(), params, (progress) => emit('export.progress', progress)),
    'weights.list': async () => weights.list(),
    'weights.get': (params) => weights.get(params),
    'weights.cancel': async (params) => weights.cancel(params),
    'weights.import': (params) => weights.importFile(params),
  };

  return {
    async call(method: string, params: unknown): Promise<unknown> {
      const name = typeof method === 'string' ? quoteExcerpt(method) : 'a request';
      if (disposed) throw new Error(`${name}: the Refit engine has shut down; restart Refit`);
      if (typeof method !== 'string' || !Object.hasOwn(methodSchemas, method)) {
        throw new Error(`Unknown method ${name}; the engine knows: ${Object.keys(methodSchemas).join(', ')}`);
      }
      const parsed = parseParams(method as MethodName, params);
      return (handlers[method as MethodName] as (p: unknown) => Promise<unknown>)(parsed);
    },

    on(listener: ServiceListener): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    async dispose(): Promise<void> {
      if (disposed) return;
      disposed = true;
      await training.close();
      weights.close();
      classifier.close();
      gradCam.close();
      listeners.clear();
    },
  };
}
