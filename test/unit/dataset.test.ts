import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { Command } from 'commander';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatasetReport, FileProblem } from '../../main/api/dataset';
import { scanDataset } from '../../main/engine/dataset-scan';
import { classSourcesFromFolders } from '../../main/engine/dataset-sources';
import { registerInspect } from '../../main/host/commands/inspect';
import type { CommandIO } from '../../main/host/commands/io';

const PHOTOS5 = path.resolve(__dirname, '../../../shared/datasets/photos5');
const photo = (rel: string) => path.join(PHOTOS5, rel);
const VEGETABLE = 'carrot.png';

let tmp: string;
const at = (...parts: string[]) => path.join(tmp, ...parts);

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-dataset-'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const counts = (report: DatasetReport) => Object.fromEntries(report.classes.map((c) => [c.name, c.images]));
const problemOf = (report: DatasetReport, file: string) => report.problems.filter((p) => p.file === file);

function pngChunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body) >>> 0);
  return Buffer.concat([len, body, crc]);
}

/** A valid-looking PNG whose header claims width×height but holds only 100 bytes of pixel data (a decompression-bomb shape). */
function pngHeaderClaiming(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([signature, pngChunk('IHDR', ihdr), pngChunk('IDAT', deflateSync(Buffer.alloc(100))), pngChunk('IEND', Buffer.alloc(0))]);
}

async function truncatedCopy(source: Buffer, dest: string, fraction: number) {
  await writeFile(dest, source.subarray(0, Math.floor(source.length * fraction)));
}

/** A valid 1×1 24-bit BMP (a real bitmap file that the image library has no decoder for). */
function bmp1x1(): Buffer {
  const b = Buffer.alloc(58);
  b.write('BM', 0);
  b.writeUInt32LE(58, 2); // file size
  b.writeUInt32LE(54, 10); // pixel data offset
  b.writeUInt32LE(40, 14); // BITMAPINFOHEADER
  b.writeInt32LE(1, 18); // width
  b.writeInt32LE(1, 22); // height
  b.writeUInt16LE(1, 26); // planes
  b.writeUInt16LE(24, 28); // bits per pixel
  b.writeUInt32LE(4, 34); // image size (one row padded to 4 bytes)
  b.set([0, 0, 255], 54); // one red pixel (BGR)
  return b;
}

describe('classSourcesFromFolders (the folder → class rule)', () => {
  it('turns a folder of class folders into one class per sub-folder, nested folders included', async () => {
    const classes = await classSourcesFromFolders([PHOTOS5]);
    expect(classes.map((c) => c.name)).toEqual(['birds', 'flowers', 'fruit', 'mammals', 'vegetables']);
    expect(classes.find((c) => c.name === 'flowers')!.folders).toEqual([photo('flowers')]);
    const report = await scanDataset(classes);
    expect(counts(report)).toEqual({ birds: 35, fruit: 26, flowers: 25, vegetables: 18, mammals: 64 });
    expect(report.problems).toEqual([]);
    expect(report.images.every((i) => path.isAbsolute(i.file) && i.file.startsWith(PHOTOS5 + '/'))).toBe(true);
    expect(report.images.every((i) => /^[0-9a-f]{64}$/.test(i.hash) && i.width > 0 && i.height > 0)).toBe(true);
    // mammals has only sub-folders plus a few images of its own: all belong to "mammals"
    expect(report.images.filter((i) => i.className === 'mammals' && i.file.includes('/mammals/dogs/')).length).toBeGreaterThan(0);
  });

  it('makes a folder holding images directly one class, its sub-folders included', async () => {
    const classes = await classSourcesFromFolders([photo('flowers')]);
    expect(classes).toEqual([{ name: 'flowers', folders: [photo('flowers')] }]);
    const report = await scanDataset(classes);
    expect(counts(report)).toEqual({ flowers: 25 });
    expect(report.images.some((i) => i.file.includes('/flowers/plastic/'))).toBe(true);
    expect(report.warnings.some((w) => w.includes('Only one class'))).toBe(true);
  });

  it('merges classes with the same name from different folders', async () => {
    const extra = at('more', 'birds');
    await mkdir(extra, { recursive: true });
    await sharp({ create: { width: 20, height: 20, channels: 3, background: '#3366aa' } }).png().toFile(path.join(extra, 'blue.png'));
    const classes = await classSourcesFromFolders([PHOTOS5, at('more'), photo('birds')]);
    expect(classes.map((c) => c.name)).toEqual(['birds', 'flowers', 'fruit', 'mammals', 'vegetables']);
    expect(classes[0].folders).toEqual([photo('birds'), extra]);
    expect(counts(await scanDataset(classes)).birds).toBe(36);
  });

  it('gives clear errors for a missing path, a file, and a folder with nothing in it', async () => {
    await expect(classSourcesFromFolders([at('nope')])).rejects.toThrow(`Folder not found: ${at('nope')}`);
    await expect(classSourcesFromFolders([photo('fruit/pineapple.png')])).rejects.toThrow(/^Not a folder: .*pineapple\.png/);
    await mkdir(at('empty'));
    await writeFile(at('empty', '.DS_Store'), 'x');
    await expect(classSourcesFromFolders([at('empty')])).rejects.toThrow(`No images in ${at('empty')}`);
  });
});

describe('scanDataset: every bad input is reported per file and the import goes on', () => {
  let report: DatasetReport;
  const root = () => at('bad');
  const f = (...parts: string[]) => path.join(root(), ...parts);

  beforeAll(async () => {
    for (const dir of ['good', 'good/nested', 'other', 'single', 'broken', 'good/__MACOSX']) await mkdir(f(dir), { recursive: true });
    // good: 6 real photos (one of them twice: a within-class duplicate), plus every kind of bad file
    for (const [i, rel] of ['fruit/pineapple.png', 'fruit/apple_green.png', 'fruit/cherimoya.png', 'birds/albino_peahen.png', 'birds/helmeted_guineafowl.png'].entries()) {
      await copyFile(photo(rel), f('good', `photo${i}.png`));
    }
    await copyFile(photo('fruit/pineapple.png'), f('good', 'nested', 'pineapple-again.png'));
    const big = await readFile(photo('flowers/anemone_red.png'));
    const jpeg = await sharp(big).flatten({ background: '#ffffff' }).jpeg({ quality: 90 }).toBuffer();
    await truncatedCopy(jpeg, f('good', 'truncated.jpg'), 0.6);
    await truncatedCopy(big, f('good', 'truncated.png'), 0.6);
    await writeFile(f('good', 'letter.jpg'), 'Dear reader,\nthis is a text file with an image name.\n');
    await writeFile(f('good', 'notes.txt'), 'not an image at all');
    await writeFile(f('good', 'zero.png'), '');
    await writeFile(f('good', 'tiny.bmp'), bmp1x1());
    await sharp({ create: { width: 1200, height: 1000, channels: 3, background: '#ffffff' } }).png().toFile(f('good', 'big-blank.png'));
    await writeFile(f('good', 'claims-huge.png'), pngHeaderClaiming(100_000, 100_000));
    await symlink(f('good'), f('good', 'nested', 'loop'));
    await symlink('self-loop.png', f('good', 'self-loop.png'));
    for (const hidden of ['.DS_Store', '._photo0.png', 'Thumbs.db', 'desktop.ini', '__MACOSX/._photo1.png']) await writeFile(f('good', hidden), 'junk');
    // other: shares one image with good (cross-class duplicate) and has 5 of its own
    await copyFile(photo('fruit/apple_green.png'), f('other', 'same-as-good.png'));
    for (const [i, rel] of ['mammals/badger.png', 'mammals/echidna.png', 'fruit/sliced_orange.png', 'fruit/orange_seville.png', 'fruit/Cherry_Stella.png'].entries()) {
      await copyFile(photo(rel), f('other', `own${i}.png`));
    }
    await copyFile(photo('vegetables/' + VEGETABLE), f('single', 'only.png'));
    await writeFile(f('broken', 'empty.jpg'), '');
    report = await scanDataset(await classSourcesFromFolders([root()]), { maxPixels: 1_000_000 });
  });

  const expectProblem = (file: string, kind: FileProblem['kind'], reason: RegExp) => {
    const found = problemOf(report, file);
    expect(found, `${file}: ${JSON.stringify(report.problems)}`).toHaveLength(1);
    expect(found[0].kind).toBe(kind);
    expect(found[0].reason).toMatch(reason);
  };

  it('detects truncated JPEG and PNG files cut from real photos', () => {
    expectProblem(f('good', 'truncated.jpg'), 'corrupt', /truncated.*premature end of JPEG/i);
    expectProblem(f('good', 'truncated.png'), 'corrupt', /truncated/i);
  });

  it('reports a text file named .jpg, other file types, and zero-byte files', () => {
    expectProblem(f('good', 'letter.jpg'), 'not-image', /Not an image.*\.jpg/);
    expectProblem(f('good', 'notes.txt'), 'not-image', /\.txt/);
    expectProblem(f('good', 'zero.png'), 'empty', /0 bytes/);
    expectProblem(f('good', 'tiny.bmp'), 'not-image', /BMP images cannot be decoded.*convert it to PNG/);
  });

  it('reports images over the pixel limit: a real large image and a header claiming 10¹⁰ pixels', () => {
    expectProblem(f('good', 'big-blank.png'), 'too-large', /1200×1000 = 1200000 pixels, over the limit of 1000000/);
    expectProblem(f('good', 'claims-huge.png'), 'too-large', /100000×100000/);
  });

  it('reports symlink loops without hanging', () => {
    expectProblem(f('good', 'nested', 'loop'), 'symlink-loop', /leads back to/);
    expectProblem(f('good', 'self-loop.png'), 'symlink-loop', /loop/);
  });

  it('skips hidden and system files silently', () => {
    expect(report.problems.filter((p) => /DS_Store|\/\._|Thumbs|desktop\.ini|__MACOSX/.test(p.file))).toEqual([]);
    expect(report.images.filter((i) => /\/\._|__MACOSX/.test(i.file))).toEqual([]);
  });

  it('reports both copies of an image found in two classes and uses neither', () => {
    expectProblem(f('good', 'photo1.png'), 'duplicate', new RegExp(`same-as-good\\.png \\(class "other"\\)`));
    expectProblem(f('other', 'same-as-good.png'), 'duplicate', /photo1\.png \(class "good"\)/);
    expect(report.images.some((i) => i.file.endsWith('photo1.png') || i.file.endsWith('same-as-good.png'))).toBe(false);
  });

  it('keeps a duplicate within one class once (the first in walk order: nested/ sorts before photo0.png)', () => {
    expectProblem(f('good', 'photo0.png'), 'duplicate-in-class', /nested\/pineapple-again\.png in the same class; used once/);
    expect(report.images.some((i) => i.file === f('good', 'nested', 'pineapple-again.png'))).toBe(true);
  });

  it('counts usable images and warns about small and empty classes', () => {
    // good: photo0, photo2, photo3, photo4 (photo1 is a cross-class duplicate)
    expect(counts(report)).toEqual({ broken: 0, good: 4, other: 5, single: 1 });
    expect(report.warnings).toContain('Class "single" has only 1 image; at least 5 are needed for a useful model');
    expect(report.warnings).toContain('Class "good" has only 4 images; at least 5 are needed for a useful model');
    expect(report.warnings).toContain('Class "broken" has no usable images');
    expect(report.problems.map((p) => p.file)).toEqual([...report.problems.map((p) => p.file)].sort());
  });
});

describe('scanDataset on photos5: imbalance', () => {
  it('warns that 64 mammals vs 18 vegetables is above 3:1', async () => {
    const report = await scanDataset(await classSourcesFromFolders([PHOTOS5]));
    expect(report.warnings).toEqual([expect.stringMatching(/^Classes are imbalanced: "mammals" has 64 images, "vegetables" 18 \(3\.6:1, above 3:1\)/)]);
  });
});

describe('refit inspect', () => {
  const run = async (args: string[]) => {
    const out: string[] = [];
    const err: string[] = [];
    let exitCode = 0;
    const io: CommandIO = { stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), stderrIsTTY: false, setExitCode: (c) => void (exitCode = c) };
    const program = new Command('refit').exitOverride();
    registerInspect(program, io);
    await program.parseAsync(['inspect', ...args], { from: 'user' });
    return { stdout: out.join(''), stderr: err.join(''), exitCode };
  };

  it('prints exactly {classes, problems, warnings} with --json', async () => {
    const { stdout, exitCode } = await run([PHOTOS5, at('bad', 'broken'), '--json']);
    const json = JSON.parse(stdout);
    expect(Object.keys(json)).toEqual(['classes', 'problems', 'warnings']);
    expect(json.classes.map((c: { name: string; images: number }) => [c.name, c.images])).toEqual([
      ['birds', 35],
      ['flowers', 25],
      ['fruit', 26],
      ['mammals', 64],
      ['vegetables', 18],
      ['broken', 0],
    ]);
    expect(json.problems).toEqual([{ file: at('bad', 'broken', 'empty.jpg'), kind: 'empty', reason: 'Empty file (0 bytes)' }]);
    expect(json.warnings).toHaveLength(2);
    expect(exitCode).toBe(0);
  });

  it('prints a readable summary: classes with counts, problems grouped by reason, warnings', async () => {
    const { stdout } = await run([at('bad'), '--max-pixels', '1000000']);
    expect(stdout).toMatch(/^4 classes, 10 usable images\n/);
    expect(stdout).toMatch(/^good\s+4\s+\//m);
    expect(stdout).toContain('Corrupt or truncated (2):');
    expect(stdout).toContain('Same image in two classes (no copy used) (2):');
    expect(stdout).toMatch(/\nWarnings:\n(  - .*\n)*  - Class "good" has only 4 images/);
  });

  it('fails clearly for a missing folder, and with exit code 1 when nothing is usable', async () => {
    await expect(run([at('nope')])).rejects.toThrow(`Folder not found: ${at('nope')}`);
    const { exitCode, stderr } = await run([at('bad', 'broken')]);
    expect(exitCode).toBe(1);
    expect(stderr).toContain('No usable images');
  });
});
