// A store-only (uncompressed) ZIP writer for the browser host's export download. Model weights barely
// compress, and the well-kept writers (yazl, archiver) would be a new dependency for ~80 lines; the
// only zip package already installed (cross-zip) shells out to the system's zip. Limits: classic ZIP
// (no ZIP64), so at most 65,535 files of under 4 GiB each and under 4 GiB in all — an export is a few
// files of at most a few hundred MB; larger input is refused with a clear error, never truncated.
import { readFile } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { crc32 } from 'node:zlib';

const LIMIT = 0xffff_ffff;
const UTF8_FLAG = 0x0800;
/** 1980-01-01 00:00 in MS-DOS time/date: the format has no time zone and Refit's exports need no times. */
const DOS_TIME = 0;
const DOS_DATE = (0 << 9) | (1 << 5) | 1;

export interface ZipEntry {
  /** The name inside the archive ('/'-separated, relative). */
  name: string;
  /** The file on disk. */
  file: string;
}

async function write(out: Writable, chunk: Uint8Array): Promise<void> {
  if (out.destroyed) throw new Error('the download was closed before the zip was complete');
  if (!out.write(chunk)) {
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        out.off('drain', done);
        out.off('close', closed);
        if (err) reject(err);
        else resolve();
      };
      const closed = () => done(new Error('the download was closed before the zip was complete'));
      out.on('drain', done);
      out.on('close', closed);
    });
  }
}

/** Writes `entries` as one ZIP archive to `out` (not ended: the caller ends it). */
export async function writeStoredZip(out: Writable, entries: readonly ZipEntry[]): Promise<void> {
  if (entries.length > 0xffff) throw new Error(`A zip without ZIP64 holds at most 65,535 files; this one would have ${entries.length}`);
  const central: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    if (!entry.name || entry.name.startsWith('/') || entry.name.split('/').includes('..')) throw new Error(`"${entry.name}" is not a relative name for a zip entry`);
    const data = await readFile(entry.file);
    if (data.byteLength >= LIMIT || offset + data.byteLength >= LIMIT) throw new Error(`${entry.file} does not fit a zip without ZIP64 (4 GiB in all)`);
    const name = Buffer.from(entry.name, 'utf8');
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(10, 4); // version needed: 1.0 (stored)
    local.writeUInt16LE(UTF8_FLAG, 6);
    local.writeUInt16LE(0, 8); // method: stored
    local.writeUInt16LE(DOS_TIME, 10);
    local.writeUInt16LE(DOS_DATE, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.byteLength, 18);
    local.writeUInt32LE(data.byteLength, 22);
    local.writeUInt16LE(name.byteLength, 26);
    local.writeUInt16LE(0, 28);
    const header = Buffer.alloc(46);
    header.writeUInt32LE(0x02014b50, 0);
    header.writeUInt16LE((3 << 8) | 20, 4); // made by: Unix, spec 2.0
    header.writeUInt16LE(10, 6);
    header.writeUInt16LE(UTF8_FLAG, 8);
    header.writeUInt16LE(0, 10);
    header.writeUInt16LE(DOS_TIME, 12);
    header.writeUInt16LE(DOS_DATE, 14);
    header.writeUInt32LE(crc, 16);
    header.writeUInt32LE(data.byteLength, 20);
    header.writeUInt32LE(data.byteLength, 24);
    header.writeUInt16LE(name.byteLength, 28);
    // extra, comment, disk number, internal attributes: 0
    header.writeUInt32LE(((0o100644 << 16) >>> 0), 38); // external attributes: a regular file, rw-r--r--
    header.writeUInt32LE(offset, 42);
    central.push(header, name);
    await write(out, local);
    await write(out, name);
    await write(out, data);
    offset += local.byteLength + name.byteLength + data.byteLength;
  }
  const directory = Buffer.concat(central);
  if (offset + directory.byteLength >= LIMIT) throw new Error('The export does not fit a zip without ZIP64 (4 GiB in all)');
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.byteLength, 12);
  end.writeUInt32LE(offset, 16);
  await write(out, directory);
  await write(out, end);
}
