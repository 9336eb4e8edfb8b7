// Grad-CAM maps the UI has asked the engine for ('classify.gradCam'), kept by run, class and image:
// asked for a few images at a time, in order, so that the first maps show while the rest compute.
import { SvelteMap, SvelteSet } from 'svelte/reactivity';
import type { GradCamRow } from '../../../main/api/grad-cam';
import type { RefitApi } from '../types';
import { fileToBase64 } from '../lib/files';

/** Images per request: small, so maps arrive soon and the engine stays free for other requests. */
const CHUNK = 8;

/** An image the engine can read by path, or one this page must send (an upload in the browser). */
export type GradCamSource = { key: string; path: string } | { key: string; name: string; blob: Blob };

export interface GradCamAsk {
  /** The run whose model is explained ('' or undefined: the latest finished run, as Classify does). */
  runId?: string;
  /** The class to explain; undefined: the class each image is predicted as. */
  className?: string;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class GradCamMaps {
  private readonly rows = new SvelteMap<string, GradCamRow>();
  private readonly pending = new SvelteSet<string>();

  constructor(private readonly api: RefitApi) {}

  private id(ask: GradCamAsk, key: string): string {
    return `${ask.runId ?? ''}\0${ask.className ?? ''}\0${key}`;
  }

  /** The map of image `key` for `ask`, once it has arrived. */
  get(ask: GradCamAsk, key: string): GradCamRow | undefined {
    return this.rows.get(this.id(ask, key));
  }

  /** True while any map is on its way. */
  get busy(): boolean {
    return this.pending.size > 0;
  }

  /** Asks for the maps of `sources` not asked for yet, a few at a time. */
  async want(ask: GradCamAsk, sources: readonly GradCamSource[]): Promise<void> {
    const missing = sources.filter((s) => !this.rows.has(this.id(ask, s.key)) && !this.pending.has(this.id(ask, s.key)));
    for (const s of missing) this.pending.add(this.id(ask, s.key));
    const params = { ...(ask.runId ? { runId: ask.runId } : {}), ...(ask.className ? { className: ask.className } : {}) };
    const byPath = missing.filter((s): s is Extract<GradCamSource, { path: string }> => 'path' in s);
    const sent = missing.filter((s): s is Extract<GradCamSource, { blob: Blob }> => 'blob' in s);
    for (let i = 0; i < byPath.length; i += CHUNK) {
      const chunk = byPath.slice(i, i + CHUNK);
      await this.fetch(ask, chunk, () => this.api.call('classify.gradCam', { ...params, paths: chunk.map((s) => s.path) }));
    }
    for (let i = 0; i < sent.length; i += CHUNK) {
      const chunk = sent.slice(i, i + CHUNK);
      await this.fetch(ask, chunk, async () =>
        this.api.call('classify.gradCam', { ...params, images: await Promise.all(chunk.map(async (s) => ({ name: s.name, data: await fileToBase64(s.blob) }))) }),
      );
    }
  }

  private async fetch(ask: GradCamAsk, chunk: readonly GradCamSource[], call: () => Promise<GradCamRow[]>) {
    try {
      const rows = await call();
      chunk.forEach((s, k) => this.rows.set(this.id(ask, s.key), rows[k] ?? { file: s.key, error: 'The engine sent no map for this image' }));
    } catch (err) {
      for (const s of chunk) this.rows.set(this.id(ask, s.key), { file: s.key, error: errorMessage(err) });
    } finally {
      for (const s of chunk) this.pending.delete(this.id(ask, s.key));
    }
  }

  clear() {
    this.rows.clear();
  }
}
