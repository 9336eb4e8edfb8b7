// Numbers, sizes and durations as people read them.

export function formatPercent(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  return `${(value * 100).toFixed(digits)}%`;
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}

/** 25,557,032 → "25.6 M". */
export function formatParams(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} K`;
  return String(n);
}

export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '—';
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

/** 42 → "42 s", 200 → "3 min 20 s", 4000 → "1 h 07 min". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '—';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) {
    const m = Math.floor(s / 60);
    const rest = s % 60;
    return rest ? `${m} min ${rest} s` : `${m} min`;
  }
  const h = Math.floor(s / 3600);
  const m = Math.round((s % 3600) / 60);
  return `${h} h ${String(m).padStart(2, '0')} min`;
}

/**
 * Rough, for estimates: "about 3 min". The estimates are meant to tell minutes from hours and can be
 * off by a factor of two, so "under a minute" is promised only when even twice the estimate is.
 */
export function formatEstimate(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return 'unknown';
  if (seconds < 30) return 'under a minute';
  if (seconds < 90) return 'about 1 min';
  if (seconds < 3600) return `about ${Math.round(seconds / 60)} min`;
  if (seconds < 48 * 3600) {
    const h = seconds / 3600;
    return `about ${h < 10 ? h.toFixed(1) : Math.round(h)} h`;
  }
  return `about ${Math.round(seconds / 86400)} days`;
}

export function formatRate(perSecond: number | null | undefined): string {
  if (perSecond === null || perSecond === undefined || !Number.isFinite(perSecond)) return '—';
  return `${perSecond >= 10 ? perSecond.toFixed(0) : perSecond.toFixed(1)} images/s`;
}

export function formatDate(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/** Last path segment, for both / and \ separators. */
export function baseName(file: string): string {
  const parts = file.split(/[\\/]/).filter(Boolean);
  return parts[parts.length - 1] ?? file;
}

const KNOWN_NAMES: Record<string, string> = { xception: 'Xception', googlenet: 'GoogLeNet' };

/** "seresnet50" → "SE-ResNet-50" (the registry's name when the list is at hand). */
export function backboneName(id: string, models: readonly { id: string; name: string }[] = []): string {
  const listed = models.find((m) => m.id === id);
  if (listed) return listed.name;
  if (KNOWN_NAMES[id]) return KNOWN_NAMES[id];
  let m = /^(se)?resnet(\d+)$/.exec(id);
  if (m) return `${m[1] ? 'SE-' : ''}ResNet-${m[2]}`;
  m = /^vgg(\d+)$/.exec(id);
  if (m) return `VGG-${m[1]}`;
  return id;
}

/** How a run trained, in plain words (the precise terms: head only, fine-tune, full training). */
export function modeName(mode: string): string {
  return mode === 'finetune' ? 'fine-tuned' : mode === 'head' ? 'quick (last layer only)' : mode === 'full' ? 'fully retrained' : mode;
}

/** The export's steps in plain words (the engine names them load / serialize / write / done). */
const EXPORT_STEPS: Record<string, string> = {
  load: 'Reading the trained model',
  serialize: 'Packing the model into files',
  write: 'Writing the files',
  onnx: 'Writing model.onnx',
  done: 'Finishing',
};

export function exportStepLabel(phase: string): string {
  return EXPORT_STEPS[phase] ?? 'Exporting…';
}
