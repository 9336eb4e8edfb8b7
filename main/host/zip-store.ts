// The browser host's export download as one ZIP archive, written by yazl (streamed from the files,
// ZIP64 when an export passes 4 GiB). Entries are stored, not compressed: model weights barely
// compress, and deflating hundreds of MB would only delay the download.
import type { Writable } from 'node:stream';
import yazl from 'yazl';

export interface ZipEntry {
  /** The name inside the archive ('/'-separated, relative). */
  name: string;
  /** The file on disk. */
  file: string;
}

/** One fixed time for every entry: an export's archive depends only on its files. */
const ENTRY_TIME = new Date(1980, 0, 1);

/** Writes `entries` as one ZIP archive to `out` (not ended: the caller ends it). */
export async function writeStoredZip(out: Writable, entries: readonly ZipEntry[]): Promise<void> {
  for (const entry of entries) {
    if (!entry.name || entry.name.startsWith('/') || entry.name.split('/').includes('..')) throw new Error(`"${entry.name}" is not a relative name for a zip entry`);
  }
  const zip = new yazl.ZipFile();
  for (const entry of entries) zip.addFile(entry.file, entry.name, { compress: false, mtime: ENTRY_TIME, mode: 0o100644 });
  zip.end();
  await new Promise<void>((resolve, reject) => {
    const closed = () => reject(new Error('the download was closed before the zip was complete'));
    const fail = (err: Error) => {
      out.off('close', closed);
      reject(err);
    };
    zip.on('error', fail);
    zip.outputStream.on('error', fail);
    out.once('close', closed);
    zip.outputStream.once('end', () => {
      out.off('close', closed);
      resolve();
    });
    zip.outputStream.pipe(out, { end: false });
  });
}
