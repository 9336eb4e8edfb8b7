// Runs as people name them: "ResNet-50 · fine-tuned · 93% · 2 min" (from the run's facts) unless the
// person gave it a name; the id (a timestamp, the run's folder) stays one click away.
import type { RunSummary } from '../types';
import { backboneName, formatDuration } from './format';

const SHORT_MODE: Record<string, string> = { head: 'quick', finetune: 'fine-tuned', full: 'fully retrained' };

type Named = Pick<RunSummary, 'backbone' | 'mode' | 'valAccuracy' | 'status'> & { name?: string; seconds?: number };

/** The run's facts in plain words: starting network · how it trained · accuracy · time. */
export function describeRun(run: Named, models: readonly { id: string; name: string }[] = []): string {
  const parts = [backboneName(run.backbone, models), SHORT_MODE[run.mode] ?? run.mode];
  if (run.valAccuracy !== null && Number.isFinite(run.valAccuracy)) parts.push(`${Math.round(run.valAccuracy * 100)}%`);
  if (run.status === 'running') parts.push('training…');
  else if (run.seconds !== undefined) parts.push(formatDuration(run.seconds).replace(/ \d+ s$/, ''));
  return parts.join(' · ');
}

/** The name to show: the person's, else the facts. */
export function runTitle(run: Named, models: readonly { id: string; name: string }[] = []): string {
  return run.name ?? describeRun(run, models);
}
