// A project's scan cache (index.json): what each image file's bytes said when last scanned, keyed
// by absolute path and trusted while size and modification time are unchanged, so a rescan reads
// only new or changed files. It also remembers which files a project had, so that a file that has
// since disappeared is reported as 'missing'.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { FileProblem } from '../api/dataset';
import { writeJsonAtomic } from './atomic-fs';
import type { ImageFacts, ScanCache } from './image-check';

const factsSchema = z.object({
  size: z.number(),
  mtimeMs: z.number(),
  hash: z.string(),
  width: z.number().optional(),
  height: z.number().optional(),
  decoded: z.boolean().optional(),
  problem: z.object({ kind: z.enum(['not-image', 'corrupt']), reason: z.string() }).optional(),
});

const indexSchema = z.object({
  format: z.literal('refit-index'),
  version: z.literal(1),
  entries: z.record(z.string(), factsSchema),
});

export class ScanIndex implements ScanCache {
  private readonly entries: Map<string, ImageFacts>;
  private changed = false;

  private constructor(entries: Map<string, ImageFacts>) {
    this.entries = entries;
  }

  static empty(): ScanIndex {
    return new ScanIndex(new Map());
  }

  /**
   * Loads `file`; a missing, corrupt or foreign index is only a cache, so it starts empty
   * (the cost is one full rescan), never an error.
   */
  static async load(file: string): Promise<ScanIndex> {
    try {
      const parsed = indexSchema.safeParse(JSON.parse(await readFile(file, 'utf8')));
      if (parsed.success) return new ScanIndex(new Map(Object.entries(parsed.data.entries)));
    } catch {
      // fall through: start empty
    }
    return ScanIndex.empty();
  }

  get size(): number {
    return this.entries.size;
  }

  get(file: string): ImageFacts | undefined {
    return this.entries.get(file);
  }

  set(file: string, facts: ImageFacts): void {
    this.entries.set(file, facts);
    this.changed = true;
  }

  /**
   * Entries inside one of `folders` that a scan did not find (not in `found`) and that are not
   * excluded: files the project had that are gone. Entries outside every folder (a removed class or
   * source) are dropped.
   */
  missing(found: ReadonlySet<string>, folders: readonly string[], exclude: ReadonlySet<string>): FileProblem[] {
    const prefixes = folders.map((folder) => (folder.endsWith(path.sep) ? folder : folder + path.sep));
    const within = (file: string) => prefixes.some((prefix) => file.startsWith(prefix));
    const problems: FileProblem[] = [];
    for (const file of [...this.entries.keys()]) {
      if (found.has(file) || exclude.has(file)) continue;
      if (!within(file)) {
        this.entries.delete(file);
        this.changed = true;
        continue;
      }
      problems.push({ file, kind: 'missing', reason: 'This image was in the project but is no longer there (moved, renamed or deleted)' });
    }
    return problems;
  }

  /** Drops the entries `missing` would report, so those files stop being reported. Returns how many. */
  forget(files: Iterable<string>): number {
    let n = 0;
    for (const file of files) if (this.entries.delete(file)) n++;
    if (n) this.changed = true;
    return n;
  }

  async save(file: string): Promise<void> {
    if (!this.changed) return;
    await writeJsonAtomic(file, { format: 'refit-index', version: 1, entries: Object.fromEntries(this.entries) });
    this.changed = false;
  }
}
