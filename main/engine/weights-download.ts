// `refit weights get`: downloads a catalogued weight set's published file and imports it into the
// user's weights cache. This is the only network access Refit makes, and only when asked.
//
// The file grows in `<weights cache>/.downloads/<file>.partial` (never a usable set: only a folder
// with weights.json under <backbone>/<set>/ is). A dropped connection is retried a few times with a
// Range request from where the partial file ends (If-Range keeps a changed file from being stitched
// onto an old start); a cancelled or failed download keeps the partial file for the next try. The
// complete file is checked against the publisher's checksum (torchvision's SHA-256 prefix, Keras'
// MD5); a set without one is verified by the import itself (every tensor used, every shape fits).
// Then importWeightFile converts it and writes the set atomically, and the download is deleted.
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, statfs, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { WeightSetEntry } from '../../models/weight-sets';
import { getBackboneSpec } from '../../models/catalog';
import { weightSetsOf } from '../../models/weight-sets';
import { weightsRoot } from '../../models/weights/store';
import type { ImportResult } from '../../models/weights/load';
import { errnoCode } from './errors';

/** The environment variable that replaces the publishers' hosts with one base URL (tests, mirrors). */
export const WEIGHTS_BASE_URL_ENV = 'REFIT_WEIGHTS_BASE_URL';

export interface DownloadProgress {
  phase: 'downloading' | 'verifying' | 'converting' | 'storing';
  /** Bytes of the file on disk so far (including a resumed start). */
  bytes: number;
  /** The file's size, when the server states it. */
  total?: number;
  /** Bytes already there when this connection started (a resumed download). */
  resumedFrom: number;
  /** Bytes per second over the current connection. */
  bytesPerSecond: number;
  /** Seconds left at that rate, when the size is known. */
  etaSeconds?: number;
  /** 1 for the first connection, 2… for retries after a drop. */
  attempt: number;
  url: string;
}

export interface DownloadOptions {
  /** A base URL replacing the publisher's (the file name is appended); default: $REFIT_WEIGHTS_BASE_URL, else the catalogue's URL. */
  baseUrl?: string;
  signal?: AbortSignal;
  onProgress?: (progress: DownloadProgress) => void;
  /** A retry note ("connection dropped at 12.3 MB; retrying in 1s (2/5)"). */
  onRetry?: (message: string) => void;
  /** Connections after the first one when a connection drops or the server fails (5xx); default 4. */
  retries?: number;
  /** Wait before the first retry, doubled for each further one; default 1000 ms. */
  retryDelayMs?: number;
  /** A connection that delivers nothing for this long counts as dropped; default 30 s. */
  idleTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface DownloadResult extends ImportResult {
  url: string;
  bytes: number;
  /** How the file was checked before it was used. */
  verified: string;
  /** Connections made (1 when nothing dropped). */
  attempts: number;
  /** Range requests made (resumptions). */
  resumed: number;
}

/** The download was cancelled (AbortSignal / Ctrl-C); the partial file is kept for the next try. */
export class DownloadCancelledError extends Error {
  constructor(readonly partialFile: string, readonly bytes: number) {
    super(`download cancelled; ${formatMB(bytes)} kept in ${partialFile}, run the same command again to continue`);
    this.name = 'DownloadCancelledError';
  }
}

/** A connection-level failure worth another try (drop, reset, idle timeout, HTTP 5xx). */
class RetryableError extends Error {}

export const formatMB = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

/** The set `refit weights get BACKBONE [--source SET]` means: the named one, else the default downloadable set. */
export function downloadableSet(backboneId: string, source?: string): WeightSetEntry {
  const backbone = getBackboneSpec(backboneId).id; // an unknown id is refused with the known ones listed
  const sets = weightSetsOf(backbone);
  if (sets.length === 0) throw new Error(`${backbone} has no ImageNet weights in Refit's catalogue yet, so there is nothing to download`);
  const files = sets.filter((s) => s.delivery === 'file');
  if (source) {
    const entry = sets.find((s) => s.id === source);
    if (!entry) throw new Error(`${backbone} has no weight set "${source}" (known: ${sets.map((s) => s.id).join(', ')})`);
    if (entry.delivery === 'bundled') throw new Error(`${backbone} ${source}: these weights ship with Refit; nothing to download`);
    return entry;
  }
  const entry = files.find((s) => s.default) ?? files[0];
  if (!entry) throw new Error(`${backbone}: its ImageNet weights ship with Refit; nothing to download`);
  return entry;
}

/** The URL a set is downloaded from: the base URL override + file name, else the publisher's URL. Never another host. */
export function downloadUrl(entry: WeightSetEntry, baseUrl?: string, env: NodeJS.ProcessEnv = process.env): string {
  const base = baseUrl ?? env[WEIGHTS_BASE_URL_ENV];
  if (base) {
    let parsed: URL;
    try {
      parsed = new URL(base.endsWith('/') ? base : base + '/');
    } catch {
      throw new Error(`invalid weights base URL "${base}"${baseUrl ? '' : ` (from ${WEIGHTS_BASE_URL_ENV})`}: expected e.g. https://mirror.example.org/models/`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error(`weights base URL "${base}": only http and https are supported`);
    return new URL(encodeURIComponent(entry.fileName), parsed).toString();
  }
  if (!entry.url) throw new Error(`${entry.fileName}: the catalogue names no download address for this set; give one with --url`);
  return entry.url;
}

export function downloadsDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(weightsRoot(env), '.downloads');
}

interface PartialMeta {
  url: string;
  etag?: string;
  lastModified?: string;
  total?: number;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

const sizeOf = (file: string) => stat(file).then((s) => s.size, () => 0);

async function readMeta(file: string): Promise<PartialMeta | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as PartialMeta;
  } catch {
    return undefined;
  }
}

/** A clear message for a full disk, saying what is kept; other errors pass through. */
function diskFullError(err: unknown, dir: string, what: string, kept = 'a partial download is kept and continues where it stopped'): Error | undefined {
  const code = errnoCode(err);
  const text = err instanceof Error ? err.message : String(err);
  if (code !== 'ENOSPC' && code !== 'EDQUOT' && !/ENOSPC|no space left/i.test(text)) return undefined;
  return new Error(`No space left on the disk holding ${dir} while ${what}; free some space and run refit weights get again (nothing half-done is usable; ${kept})`);
}

async function checkFreeSpace(dir: string, needed: number, what: string): Promise<void> {
  let free: number;
  try {
    const s = await statfs(dir);
    free = Number(s.bavail) * Number(s.bsize);
  } catch {
    return; // unknown: the writes themselves will tell
  }
  if (free < needed) {
    throw new Error(`Not enough free space in ${dir}: ${what} needs about ${formatMB(needed)}, ${formatMB(free)} is free; free some space and run refit weights get again`);
  }
}

/** One HTTP connection: appends to `partial` from its current size; resolves when the file is complete. */
async function fetchOnce(url: string, partial: string, metaFile: string, attempt: number, options: DownloadOptions, stats: { ranges: number }): Promise<void> {
  const have = await sizeOf(partial);
  const meta = have > 0 ? await readMeta(metaFile) : undefined;
  const canResume = have > 0 && meta?.url === url;
  const headers: Record<string, string> = { 'accept-encoding': 'identity' };
  if (canResume) {
    headers.range = `bytes=${have}-`;
    const validator = meta.etag ?? meta.lastModified;
    if (validator) headers['if-range'] = validator;
    stats.ranges++;
  }
  const idle = new AbortController();
  const signals = [idle.signal, ...(options.signal ? [options.signal] : [])];
  const signal = AbortSignal.any(signals);
  const idleMs = options.idleTimeoutMs ?? 30_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const armIdle = () => {
    clearTimeout(timer);
    timer = setTimeout(() => idle.abort(new RetryableError(`no data for ${idleMs / 1000}s`)), idleMs);
  };
  armIdle();
  let response: Response;
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  try {
    response = await fetch(url, { headers, signal, redirect: 'follow' });
  } catch (err) {
    clearTimeout(timer);
    if (options.signal?.aborted) throw options.signal.reason;
    throw new RetryableError(`could not connect to ${url}: ${causeText(err)}`);
  }
  try {
    if (response.status >= 500 || response.status === 408 || response.status === 429) {
      throw new RetryableError(`${url} answered HTTP ${response.status} ${response.statusText}`);
    }
    if (response.status === 416) {
      // The partial file is not a prefix of what the server has now (it is as long or longer): start over.
      await rm(partial, { force: true });
      throw new RetryableError(`${url} refused to continue from ${formatMB(have)} (HTTP 416); starting again`);
    }
    if (response.status !== 200 && response.status !== 206) {
      throw new Error(`${url} answered HTTP ${response.status} ${response.statusText}${response.status === 404 ? ': the file is not there (check --url or the mirror)' : ''}`);
    }
    let start = 0;
    let total: number | undefined;
    const length = Number(response.headers.get('content-length') ?? NaN);
    if (response.status === 206) {
      const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(response.headers.get('content-range') ?? '');
      if (!range || Number(range[1]) !== have) {
        await rm(partial, { force: true });
        throw new RetryableError(`${url} sent a different range (${response.headers.get('content-range') ?? 'none'}) than asked (from ${have}); starting again`);
      }
      start = have;
      total = range[3] === '*' ? undefined : Number(range[3]);
    } else if (Number.isFinite(length)) {
      total = length;
    }
    if (start === 0) {
      const fresh: PartialMeta = { url, ...(total !== undefined ? { total } : {}) };
      const etag = response.headers.get('etag');
      const lastModified = response.headers.get('last-modified');
      if (etag && !etag.startsWith('W/')) fresh.etag = etag;
      else if (lastModified) fresh.lastModified = lastModified;
      await writeFile(metaFile, JSON.stringify(fresh));
      await truncate(partial, 0).catch(() => undefined);
    }
    // The rest of the file and, later, its converted copy (float32, about as large) must fit.
    if (total !== undefined) await checkFreeSpace(path.dirname(partial), total - start + total, `downloading ${path.basename(url)} (${formatMB(total)}) and converting it`);
    if (!response.body) throw new RetryableError(`${url} sent no body`);
    const handle = await open(partial, start === 0 ? 'w' : 'a');
    let bytes = start;
    const began = performance.now();
    reader = response.body.getReader();
    try {
      for (;;) {
        const { done, value: chunk } = await reader.read();
        if (done) break;
        armIdle();
        await handle.write(chunk);
        bytes += chunk.byteLength;
        const seconds = (performance.now() - began) / 1000;
        const rate = seconds > 0 ? (bytes - start) / seconds : 0;
        options.onProgress?.({
          phase: 'downloading',
          bytes,
          ...(total !== undefined ? { total } : {}),
          resumedFrom: start,
          bytesPerSecond: rate,
          ...(total !== undefined && rate > 0 ? { etaSeconds: (total - bytes) / rate } : {}),
          attempt,
          url,
        });
      }
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason;
      if (idle.signal.aborted) throw idle.signal.reason;
      if (errnoCode(err)) throw err; // the disk, not the connection
      throw new RetryableError(`connection dropped at ${formatMB(bytes)}${total ? ` of ${formatMB(total)}` : ''}: ${causeText(err)}`);
    } finally {
      await handle.close();
    }
    if (total !== undefined && bytes < total) throw new RetryableError(`connection closed at ${formatMB(bytes)} of ${formatMB(total)}`);
    if (total !== undefined && bytes > total) {
      await rm(partial, { force: true });
      throw new Error(`${url} sent ${bytes} bytes, more than the ${total} it announced; the download was discarded`);
    }
  } finally {
    clearTimeout(timer);
    // An unread body keeps its socket; cancel it so nothing lingers after an error.
    await (reader ?? response.body)?.cancel().catch(() => undefined);
  }
}

function causeText(err: unknown): string {
  const cause = (err as { cause?: unknown })?.cause;
  const inner = cause instanceof Error ? cause.message : undefined;
  const outer = err instanceof Error ? err.message : String(err);
  return inner && inner !== outer ? `${outer} (${inner})` : outer;
}

/** Hex SHA-256 and MD5 of a file, in one pass. */
async function fileDigests(file: string): Promise<{ sha256: string; md5: string }> {
  const sha = createHash('sha256');
  const md5 = createHash('md5');
  const handle = await open(file, 'r');
  try {
    for await (const chunk of handle.createReadStream()) {
      sha.update(chunk as Buffer);
      md5.update(chunk as Buffer);
    }
  } finally {
    await handle.close().catch(() => undefined);
  }
  return { sha256: sha.digest('hex'), md5: md5.digest('hex') };
}

/**
 * Downloads `entry` (a weight set of `backbone` from the catalogue) and imports it into the weights
 * cache. Resolves with the stored set; rejects with DownloadCancelledError when `signal` fires, and with
 * a message naming the file and the problem otherwise. A set is usable only once fully verified and stored.
 */
export async function downloadWeightSet(backbone: string, entry: WeightSetEntry, options: DownloadOptions = {}): Promise<DownloadResult> {
  if (entry.delivery === 'bundled') throw new Error(`${backbone} ${entry.id}: these weights ship with Refit; nothing to download`);
  const env = options.env ?? process.env;
  const url = downloadUrl(entry, options.baseUrl, env);
  const dir = downloadsDir(env);
  const partial = path.join(dir, `${entry.fileName}.partial`);
  const metaFile = `${partial}.json`;
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    throw diskFullError(err, dir, 'preparing the download') ?? err;
  }
  const retries = options.retries ?? 4;
  const delay = options.retryDelayMs ?? 1000;
  let attempts = 0;
  const stats = { ranges: 0 };
  // A file completed earlier (its storing stopped by a full disk) is checked again, not fetched again.
  const earlier = await readMeta(metaFile);
  const complete = earlier?.url === url && earlier.total !== undefined && (await sizeOf(partial)) === earlier.total;
  while (!complete) {
    attempts++;
    try {
      await fetchOnce(url, partial, metaFile, attempts, options, stats);
      break;
    } catch (err) {
      if (options.signal?.aborted) throw new DownloadCancelledError(partial, await sizeOf(partial));
      const full = diskFullError(err, dir, `downloading ${entry.fileName}`);
      if (full) throw full;
      if (!(err instanceof RetryableError) || attempts > retries) {
        const tail = err instanceof RetryableError ? ` (gave up after ${attempts} connections; ${formatMB(await sizeOf(partial))} kept in ${partial}, run again to continue)` : '';
        throw new Error(`${err instanceof Error ? err.message : String(err)}${tail}`);
      }
      const wait = delay * 2 ** (attempts - 1);
      options.onRetry?.(`${err.message}; retrying in ${(wait / 1000).toFixed(wait < 1000 ? 1 : 0)}s (${attempts + 1}/${retries + 1})`);
      try {
        await sleep(wait, options.signal);
      } catch {
        throw new DownloadCancelledError(partial, await sizeOf(partial));
      }
    }
  }
  const bytes = await sizeOf(partial);
  // Complete: a later try (after a full disk while storing) need not fetch it again, even when the server gave no size.
  if (!complete) await writeFile(metaFile, JSON.stringify({ ...(await readMeta(metaFile)), url, total: bytes }));
  options.onProgress?.({ phase: 'verifying', bytes, total: bytes, resumedFrom: 0, bytesPerSecond: 0, attempt: attempts, url });
  const digests = await fileDigests(partial);
  let verified: string;
  const discard = async () => {
    await rm(partial, { force: true });
    await rm(metaFile, { force: true });
  };
  if (entry.checksum?.algorithm === 'sha256-prefix') {
    if (!digests.sha256.startsWith(entry.checksum.value)) {
      await discard();
      throw new Error(
        `${entry.fileName} from ${url}: SHA-256 ${digests.sha256.slice(0, 16)}… does not start with ${entry.checksum.value}, the prefix ${entry.publisher} publishes in the file name: the download is damaged or not the published file. Nothing was stored and the download was deleted.`,
      );
    }
    verified = `SHA-256 ${digests.sha256.slice(0, 16)}… starts with the published ${entry.checksum.value}`;
  } else if (entry.checksum?.algorithm === 'md5') {
    if (digests.md5 !== entry.checksum.value) {
      await discard();
      throw new Error(`${entry.fileName} from ${url}: MD5 ${digests.md5} is not the published ${entry.checksum.value}: the download is damaged or not the published file. Nothing was stored and the download was deleted.`);
    }
    verified = `MD5 ${digests.md5} as published`;
  } else {
    verified = 'no checksum published: verified by importing it (every tensor used, every shape fits)';
  }
  // Under the publisher's name the importer checks the SHA-256 prefix once more and records it.
  const named = path.join(dir, entry.fileName);
  await rename(partial, named);
  let keep = false;
  try {
    const { importWeightFile } = await import('../../models/weights/load');
    const { getBackbone } = await import('../../models/registry');
    const info = getBackbone(backbone);
    const result = await importWeightFile(info.id, entry, named, (size, variant) => info.build({ inputSize: size, variant }), (message) =>
      options.onProgress?.({ phase: message.startsWith('storing') ? 'storing' : 'converting', bytes, total: bytes, resumedFrom: 0, bytesPerSecond: 0, attempt: attempts, url }),
    );
    return { ...result, url, bytes, verified, attempts, resumed: stats.ranges };
  } catch (err) {
    const full = diskFullError(err, weightsRoot(env), `storing the converted ${backbone} ${entry.id} weights`, `the verified download is kept in ${partial}, so the next try only stores it`);
    keep = !!full;
    throw full ?? err;
  } finally {
    // Stored or refused, the published file is not kept (the cache holds the converted set), except
    // after a full disk, when the verified file waits for the next try.
    if (keep) await rename(named, partial);
    else {
      await rm(named, { force: true });
      await rm(metaFile, { force: true });
    }
  }
}
