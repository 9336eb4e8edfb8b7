// Thumbnails made by the engine (`dataset.thumbnail`), cached here: only what is wanted is asked for,
// a few at a time, newest wish first; an LRU bound keeps memory flat while scrolling thousands.
import { SvelteMap } from 'svelte/reactivity';
import type { RefitApi } from '../types';

export class ThumbnailCache {
  /** file → data URL (reactive: cells re-render when theirs arrives). */
  readonly urls = new SvelteMap<string, string>();
  /** Files whose thumbnail failed (shown as a placeholder, not retried). */
  readonly failed = new SvelteMap<string, string>();
  private queue: string[] = [];
  private inFlight = new Set<string>();
  /** Number of requests made (for tests and diagnostics). */
  requests = 0;

  constructor(
    private api: RefitApi,
    private size = 160,
    private concurrency = 6,
    private capacity = 4000,
  ) {}

  get(file: string): string | undefined {
    return this.urls.get(file);
  }

  /** The files currently on screen: queued ones that scrolled away are dropped. */
  want(files: readonly string[]) {
    const next = files.filter((f) => !this.urls.has(f) && !this.failed.has(f) && !this.inFlight.has(f));
    this.queue = next;
    this.pump();
  }

  private pump() {
    while (this.inFlight.size < this.concurrency && this.queue.length > 0) {
      const file = this.queue.shift()!;
      this.inFlight.add(file);
      this.requests++;
      this.api
        .call('dataset.thumbnail', { file, size: this.size })
        .then((r) => this.store(file, r.dataUrl))
        .catch((err: unknown) => this.failed.set(file, err instanceof Error ? err.message : String(err)))
        .finally(() => {
          this.inFlight.delete(file);
          this.pump();
        });
    }
  }

  private store(file: string, url: string) {
    if (this.urls.size >= this.capacity) {
      // Map iteration order is insertion order: the oldest go first.
      let drop = Math.ceil(this.capacity / 10);
      for (const key of this.urls.keys()) {
        if (drop-- <= 0) break;
        this.urls.delete(key);
      }
    }
    this.urls.set(file, url);
  }

  clear() {
    this.urls.clear();
    this.failed.clear();
    this.queue = [];
  }
}
