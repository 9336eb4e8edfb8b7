// A run as the run list shows it (contract RunSummary), from its run.json.
import type { RunSummary } from '../../api/contract';
import type { RunRecord } from '../../api/training';

export function summarizeRun(run: RunRecord): RunSummary {
  const seconds = (Date.parse(run.updated) - Date.parse(run.created)) / 1000;
  return {
    id: run.id,
    created: run.created,
    status: run.status,
    backbone: run.config.backbone,
    mode: run.config.mode,
    valAccuracy: run.metrics?.valAccuracy ?? null,
    epochs: run.history.length,
    ...(run.name ? { name: run.name } : {}),
    ...(run.status !== 'running' && Number.isFinite(seconds) && seconds >= 0 ? { seconds } : {}),
  };
}
