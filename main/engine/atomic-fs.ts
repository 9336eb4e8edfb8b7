// Atomic writes: readers (and a restarted app after a crash or power loss) see either the old
// content or the new, never a half-written file. Data goes to a temporary file in the same folder
// (so the rename stays on one file system), is fsynced, then renamed over the target.
import { randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';

/** Where a crash hurts most: a file's temporary written but not renamed; a folder's new content built; the old one set aside. */
export type FaultPoint = 'file-renaming' | 'dir-filled' | 'dir-swapping';
const faultCounts = new Map<FaultPoint, number>();

/**
 * Fault injection for the crash-consistency tests: REFIT_FAULT_KILL="<point>:<n>" kills this process
 * with SIGKILL (as the out-of-memory killer would) the n-th time it reaches <point>. Unset in normal use.
 */
function faultPoint(point: FaultPoint): void {
  const spec = process.env.REFIT_FAULT_KILL;
  if (!spec?.startsWith(`${point}:`)) return;
  const count = (faultCounts.get(point) ?? 0) + 1;
  faultCounts.set(point, count);
  if (count === Number(spec.slice(point.length + 1))) process.kill(process.pid, 'SIGKILL');
}

/** A hidden sibling name: walkers that skip dot-files never pick up half-written temporaries. */
function siblingName(target: string, suffix: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.${suffix}`);
}

async function fsyncPath(p: string): Promise<void> {
  const handle = await open(p, 'r');
  try {
    await handle.sync();
  } catch {
    // Some file systems refuse fsync on folders; the rename is still atomic there.
  } finally {
    await handle.close();
  }
}

/**
 * Writes `data` to `file` atomically (temp file + fsync + rename). On failure the old file is untouched.
 * `durable: false` skips the fsyncs, for caches whose readers check what they read.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, { durable = true } = {}): Promise<void> {
  if (durable) await removeStaleTemporaries(file);
  const tmp = siblingName(file, 'tmp');
  const handle = await open(tmp, 'wx');
  try {
    try {
      await handle.writeFile(data);
      if (durable) await handle.sync();
    } finally {
      await handle.close();
    }
    faultPoint('file-renaming');
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  if (durable) await fsyncPath(path.dirname(file));
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Removes `.<name>.<pid>.<random>.tmp` siblings of `file` left by a process that died mid-write. */
async function removeStaleTemporaries(file: string): Promise<void> {
  const prefix = `.${path.basename(file)}.`;
  let names: string[];
  try {
    names = await readdir(path.dirname(file));
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
    const pid = Number(name.slice(prefix.length).split('.')[0]);
    if (Number.isInteger(pid) && pid !== process.pid && !isAlive(pid)) await rm(path.join(path.dirname(file), name), { force: true });
  }
}

/** Serialises first (so an unserialisable value fails before the disk is touched), then writes atomically. */
export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const text = JSON.stringify(value, null, 2);
  if (text === undefined) throw new Error(`Cannot write ${file}: the value is not JSON-serialisable`);
  await writeFileAtomic(file, text + '\n');
}

async function fsyncTree(dir: string): Promise<void> {
  const entries: Dirent[] = await readdir(dir, { withFileTypes: true });
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) await fsyncTree(full);
    else if (entry.isFile()) await fsyncPath(full);
  }
  await fsyncPath(dir);
}

const exists = (p: string) => stat(p).then(() => true, () => false);

/**
 * Replaces folder `dir` with a new one filled by `fill(tmpDir)`. The new content is built in a
 * hidden sibling folder and fsynced; then the old folder is renamed aside, the new one renamed into
 * place, and the old one deleted. If `fill` throws, `dir` is left as it was.
 *
 * POSIX cannot rename a folder over a non-empty folder, so there is a window of two renames in which
 * `dir` does not exist; a crash exactly there leaves the previous content in `.<name>.*.old`, which
 * the next call (or `recoverDir`) puts back before doing anything else.
 */
export async function replaceDirAtomic(dir: string, fill: (tmpDir: string) => Promise<void>): Promise<void> {
  await recoverDir(dir);
  await mkdir(path.dirname(dir), { recursive: true });
  const tmp = siblingName(dir, 'tmp');
  await mkdir(tmp);
  try {
    await fill(tmp);
    await fsyncTree(tmp);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  faultPoint('dir-filled');
  const old = siblingName(dir, 'old');
  const hadOld = await exists(dir);
  if (hadOld) await rename(dir, old);
  if (hadOld) faultPoint('dir-swapping');
  try {
    await rename(tmp, dir);
  } catch (err) {
    if (hadOld) await rename(old, dir);
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  await fsyncPath(path.dirname(dir));
  if (hadOld) await rm(old, { recursive: true, force: true });
}

/** Restores `dir` from a `.<name>.*.old` sibling left by a crash inside replaceDirAtomic, and removes stale temporaries. */
export async function recoverDir(dir: string): Promise<void> {
  const parent = path.dirname(dir);
  const prefix = `.${path.basename(dir)}.`;
  let names: string[];
  try {
    names = await readdir(parent);
  } catch {
    return;
  }
  const leftovers = names.filter((n) => n.startsWith(prefix) && (n.endsWith('.old') || n.endsWith('.tmp')));
  const dirExists = await exists(dir);
  for (const name of leftovers.sort()) {
    const full = path.join(parent, name);
    if (name.endsWith('.old') && !dirExists && !(await exists(dir))) await rename(full, dir);
    else await rm(full, { recursive: true, force: true });
  }
}
