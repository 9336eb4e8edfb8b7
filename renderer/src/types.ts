// The contract's types, re-exported for the renderer. Type-only: nothing of the engine (or zod)
// ends up in the renderer bundle.
export type {
  RefitApi,
  MethodName,
  Params,
  Results,
  Events,
  EventName,
  AppInfo,
  ProjectView,
  DatasetView,
  ImagePage,
  DirListing,
  ModelCard,
  TrainingStatus,
  RunSummary,
  ClassifyRow,
} from '../../main/api/contract';
export type {
  TrainConfig,
  TrainMode,
  TrainPhase,
  TrainEvent,
  EpochRecord,
  RunRecord,
  RunMetrics,
  RunStatus,
  ClassMetrics,
  Misclassified,
} from '../../main/api/training';
export type { FileProblem, ProblemKind } from '../../main/api/dataset';
export type { BackendReport } from '../../main/api/backends';

import type { Results } from '../../main/api/contract';
import type { TrainEvent } from '../../main/api/training';

export type ExportResult = Results['export.run'];
export type ProgressEvent = Extract<TrainEvent, { type: 'progress' }>;
