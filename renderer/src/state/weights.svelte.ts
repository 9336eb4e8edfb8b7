// The backbone cards' ImageNet weights: which sets each backbone has on this computer, downloads in
// progress (from 'weights.progress' events), their errors, and imports of a weight file.
import type { Events, RefitApi, Results } from '../types';

export type WeightSetView = Results['weights.list'][number];
export type WeightsProgress = Events['weights.progress'];

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** A failure to reach the publisher at all (no network, no DNS), as opposed to a bad file or a full disk. */
export function looksOffline(error: string): boolean {
  return /could not connect|fetch failed|ENOTFOUND|EAI_AGAIN|ENETUNREACH|ECONNREFUSED|getaddrinfo|no data for/i.test(error);
}

export class WeightsState {
  sets = $state<WeightSetView[]>([]);
  loaded = $state(false);
  /** Backbone id → its download's latest progress (present while it runs). */
  downloads = $state<Record<string, WeightsProgress>>({});
  /** Backbone id → the last get/import failure, shown on its card. */
  errors = $state<Record<string, string>>({});
  /** Backbone ids with an import running. */
  importing = $state<Record<string, boolean>>({});

  constructor(
    /** The API (a function, so a screen can hand over its current app's). */
    private readonly apiOf: () => RefitApi,
    /** Called after a set was stored (e.g. to reload the backbones, whose weights changed). */
    private readonly onStored: () => unknown = () => undefined,
  ) {}

  /** Follows download progress; returns the function that stops. */
  connect(): () => void {
    return this.apiOf().on('weights.progress', (p) => {
      if (this.downloads[p.backbone] || p.phase === 'downloading') this.downloads = { ...this.downloads, [p.backbone]: p };
    });
  }

  async load(): Promise<void> {
    try {
      this.sets = await this.apiOf().call('weights.list', {});
      this.loaded = true;
    } catch {
      // Not loaded: the cards show only what models.list says.
    }
  }

  of(backbone: string): WeightSetView[] {
    return this.sets.filter((s) => s.backbone === backbone);
  }

  async get(backbone: string): Promise<void> {
    const { [backbone]: _dropped, ...rest } = this.errors;
    this.errors = rest;
    const first = this.of(backbone).find((s) => s.delivery === 'file' && s.default) ?? this.of(backbone).find((s) => s.delivery === 'file');
    this.downloads = { ...this.downloads, [backbone]: { backbone, set: first?.set ?? '', phase: 'downloading', bytes: 0, total: first?.bytes ?? null, bytesPerSecond: 0, etaSeconds: null, attempt: 1 } };
    try {
      await this.apiOf().call('weights.get', { backbone });
      await this.stored();
    } catch (err) {
      this.errors = { ...this.errors, [backbone]: message(err) };
    } finally {
      const { [backbone]: _done, ...others } = this.downloads;
      this.downloads = others;
    }
  }

  async cancel(backbone: string): Promise<void> {
    try {
      await this.apiOf().call('weights.cancel', { backbone });
    } catch (err) {
      this.errors = { ...this.errors, [backbone]: message(err) };
    }
  }

  async importFile(backbone: string, file: string): Promise<void> {
    const { [backbone]: _dropped, ...rest } = this.errors;
    this.errors = rest;
    this.importing = { ...this.importing, [backbone]: true };
    try {
      await this.apiOf().call('weights.import', { backbone, file });
      await this.stored();
    } catch (err) {
      this.errors = { ...this.errors, [backbone]: message(err) };
    } finally {
      const { [backbone]: _done, ...others } = this.importing;
      this.importing = others;
    }
  }

  private async stored(): Promise<void> {
    await this.load();
    await this.onStored();
  }
}
