import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeImage } from '../../main/engine/image-decode';
import { listImageFiles } from '../../main/engine/image-files';

let tmp: string;
const file = (name: string) => path.join(tmp, name);

/** Pixel (x, y) of a decoded size×size RGB image. */
const at = (px: Float32Array, size: number, x: number, y: number) => Array.from(px.subarray((y * size + x) * 3, (y * size + x) * 3 + 3));

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-decode-'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('decodeImage', () => {
  it('flattens alpha onto white and keeps opaque colours', async () => {
    // 32×32: left half opaque red, right half fully transparent (black underneath).
    const raw = Buffer.alloc(32 * 32 * 4);
    for (let y = 0; y < 32; y++) for (let x = 0; x < 16; x++) raw.set([255, 0, 0, 255], (y * 32 + x) * 4);
    await sharp(raw, { raw: { width: 32, height: 32, channels: 4 } }).png().toFile(file('alpha.png'));
    const px = await decodeImage(file('alpha.png'), 16);
    expect(px).toBeInstanceOf(Float32Array);
    expect(px).toHaveLength(16 * 16 * 3);
    expect(at(px, 16, 2, 8)).toEqual([255, 0, 0]);
    expect(at(px, 16, 13, 8)).toEqual([255, 255, 255]);
  });

  it('turns grayscale into three equal channels', async () => {
    await sharp(Buffer.alloc(20 * 20, 90), { raw: { width: 20, height: 20, channels: 1 } }).png().toFile(file('gray.png'));
    const px = await decodeImage(file('gray.png'), 10);
    expect(px).toHaveLength(10 * 10 * 3);
    expect(at(px, 10, 5, 5)).toEqual([90, 90, 90]);
  });

  it('applies the EXIF orientation of a JPEG', async () => {
    // Stored landscape 40×20 with the top half blue and the bottom half yellow, tagged "rotate 90° clockwise".
    const raw = Buffer.alloc(40 * 20 * 3);
    for (let y = 0; y < 20; y++) for (let x = 0; x < 40; x++) raw.set(y < 10 ? [0, 0, 255] : [255, 255, 0], (y * 40 + x) * 3);
    await sharp(raw, { raw: { width: 40, height: 20, channels: 3 } }).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toFile(file('rotated.jpg'));
    expect((await sharp(file('rotated.jpg')).metadata()).orientation).toBe(6);
    const px = await decodeImage(file('rotated.jpg'), 40);
    // Upright it is portrait 20×40: yellow on the left, blue on the right, white padding at both sides.
    const close = (got: number[], want: number[]) => got.every((v, i) => Math.abs(v - want[i]) < 12);
    expect(close(at(px, 40, 15, 20), [255, 255, 0])).toBe(true);
    expect(close(at(px, 40, 25, 20), [0, 0, 255])).toBe(true);
    expect(at(px, 40, 2, 20)).toEqual([255, 255, 255]);
    expect(at(px, 40, 37, 20)).toEqual([255, 255, 255]);
  });

  it('letterboxes a non-square image onto white ("contain")', async () => {
    await sharp({ create: { width: 60, height: 20, channels: 3, background: { r: 0, g: 128, b: 0 } } }).png().toFile(file('wide.png'));
    const px = await decodeImage(file('wide.png'), 30);
    expect(at(px, 30, 15, 15)).toEqual([0, 128, 0]);
    expect(at(px, 30, 0, 15)).toEqual([0, 128, 0]);
    expect(at(px, 30, 15, 2)).toEqual([255, 255, 255]);
    expect(at(px, 30, 15, 28)).toEqual([255, 255, 255]);
  });

  it('decodes a real cut-out photo', async () => {
    const px = await decodeImage(path.resolve(__dirname, '../../../shared/datasets/photos5/birds/pelican.png'), 224);
    expect(px).toHaveLength(224 * 224 * 3);
    expect(at(px, 224, 0, 0)).toEqual([255, 255, 255]);
    expect(px.reduce((m, v) => Math.min(m, v), 255)).toBeLessThan(100);
  });

  it('names the file in every error', async () => {
    const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#123456' } }).png().toBuffer();
    await writeFile(file('truncated.png'), png.subarray(0, Math.floor(png.length / 2)));
    await writeFile(file('header-only.png'), png.subarray(0, 40));
    await writeFile(file('empty.png'), '');
    await writeFile(file('notes.jpg'), 'these are not pixels\n');
    await mkdir(file('folder.png'));

    await expect(decodeImage(file('truncated.png'), 8)).rejects.toThrow(`Cannot decode image ${file('truncated.png')}: corrupt or truncated`);
    await expect(decodeImage(file('header-only.png'), 8)).rejects.toThrow(`Cannot decode image ${file('header-only.png')}: corrupt or truncated`);
    await expect(decodeImage(file('empty.png'), 8)).rejects.toThrow(`Cannot decode image ${file('empty.png')}: the file is empty (0 bytes)`);
    await expect(decodeImage(file('notes.jpg'), 8)).rejects.toThrow(`Cannot decode image ${file('notes.jpg')}: not an image`);
    await expect(decodeImage(file('missing.png'), 8)).rejects.toThrow(`Image file not found: ${file('missing.png')}`);
    await expect(decodeImage(file('folder.png'), 8)).rejects.toThrow(`Not an image file: ${file('folder.png')} is a directory`);
  });

  it('refuses inputs above the pixel limit', async () => {
    await sharp({ create: { width: 300, height: 200, channels: 3, background: '#fff' } }).png().toFile(file('big.png'));
    await expect(decodeImage(file('big.png'), 8, { maxInputPixels: 10_000 })).rejects.toThrow(
      `${file('big.png')} is too large to decode: 300×200 = 60000 pixels exceeds the limit of 10000`,
    );
  });
});

describe('listImageFiles', () => {
  it('walks folders sorted, skips hidden and non-image files, survives symlink loops', async () => {
    const root = file('tree');
    await mkdir(path.join(root, 'b', 'deep'), { recursive: true });
    await mkdir(path.join(root, 'a'));
    await mkdir(path.join(root, '.hidden'));
    for (const f of ['b/deep/z.PNG', 'b/y.jpeg', 'a/x.webp', 'a/readme.txt', 'c.tif', '.hidden/h.png', 'a/.h.png']) {
      await writeFile(path.join(root, f), '');
    }
    await symlink(root, path.join(root, 'b', 'loop'));
    const files = await listImageFiles([root, path.join(root, 'c.tif'), path.join(root, 'gone.png')]);
    expect(files.map((f) => path.relative(root, f))).toEqual(['a/x.webp', 'b/deep/z.PNG', 'b/y.jpeg', 'c.tif', 'gone.png']);
  });
});
