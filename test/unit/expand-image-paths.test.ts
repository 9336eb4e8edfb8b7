// The CLI's predict lists its inputs one at a time (streaming) and learns the total from the
// listing itself (onTotal), so no second walk of the folders is needed for done/total and an ETA.
import { describe, it, expect } from 'vitest';
import path from 'node:path';
import { readdir } from 'node:fs/promises';
import { expandImagePaths } from '../../main/engine/predict';

const PHOTOS = path.resolve(__dirname, '../../../shared/datasets/photos5');

describe('expandImagePaths', () => {
  it('yields each image once across overlapping inputs and reports the total after the last listing', async () => {
    const birds = (await readdir(path.join(PHOTOS, 'birds'))).filter((f) => f.endsWith('.png')).sort();
    const fruit = (await readdir(path.join(PHOTOS, 'fruit'))).filter((f) => f.endsWith('.png'));
    const inputs = [path.join(PHOTOS, 'birds', birds[0]), path.join(PHOTOS, 'birds'), path.join(PHOTOS, 'fruit')];
    const totals: { total: number; yieldedBefore: number }[] = [];
    const files: string[] = [];
    for await (const file of expandImagePaths(inputs, (total) => totals.push({ total, yieldedBefore: files.length }))) files.push(file);
    expect(files.length).toBe(birds.length + fruit.length);
    expect(new Set(files).size).toBe(files.length);
    expect(files[0]).toBe(path.join(PHOTOS, 'birds', birds[0]));
    expect(totals).toEqual([{ total: files.length, yieldedBefore: birds.length }]);
  });
});
