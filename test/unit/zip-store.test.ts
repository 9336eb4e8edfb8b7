// The browser host's zip download (yazl, stored entries), read back by two independent readers (extract-zip, the
// yauzl-based extractor, and the weights importer's own reader), with a name in UTF-8, an empty file
// and a file of random bytes; names that would leave the archive's folder are refused.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import extractZip from 'extract-zip';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeStoredZip } from '../../main/host/zip-store';
import { ZipArchive } from '../../models/weights/zip';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-zip-'));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

async function zipOf(entries: { name: string; data: Buffer }[]): Promise<Buffer> {
  const files = [];
  for (const [i, e] of entries.entries()) {
    const file = path.join(tmp, `in-${i}`);
    await writeFile(file, e.data);
    files.push({ name: e.name, file });
  }
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  await writeStoredZip(out, files);
  out.end();
  return Buffer.concat(chunks);
}

describe('writeStoredZip', () => {
  it('writes an archive that other readers unpack to the same bytes', async () => {
    const entries = [
      { name: 'model.json', data: Buffer.from('{"format":"layers-model"}') },
      { name: 'group1-shard1of1.bin', data: randomBytes(300_000) },
      { name: 'empty.txt', data: Buffer.alloc(0) },
      { name: 'Vögel – README.md', data: Buffer.from('# Vögel\n') },
    ];
    const zip = await zipOf(entries);
    const file = path.join(tmp, 'out.zip');
    await writeFile(file, zip);

    const dir = path.join(tmp, 'unzipped');
    await extractZip(file, { dir });
    expect((await readdir(dir)).sort()).toEqual(entries.map((e) => e.name).sort());
    for (const e of entries) expect((await readFile(path.join(dir, e.name))).equals(e.data), e.name).toBe(true);

    const archive = ZipArchive.open(zip, file);
    for (const e of entries) expect(archive.read(e.name).equals(e.data), e.name).toBe(true);
    // Stored, not compressed: every file's bytes appear as they are, so the archive is at least their sum.
    expect(zip.byteLength).toBeGreaterThan(entries.reduce((n, e) => n + e.data.byteLength, 0));
    expect(zip.includes(entries[1].data)).toBe(true);
  });

  it('refuses names that would leave the folder the archive is unpacked into', async () => {
    await expect(zipOf([{ name: '../evil.txt', data: Buffer.from('x') }])).rejects.toThrow(/"\.\.\/evil\.txt" is not a relative name/);
    await expect(zipOf([{ name: '/etc/passwd', data: Buffer.from('x') }])).rejects.toThrow(/not a relative name/);
  });
});
