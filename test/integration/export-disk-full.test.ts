// Export onto a disk that fills up half-way: a 256 KiB tmpfs mounted for the test (as root; without
// root, a read-only folder stands in for it). Moved from test/unit/export.test.ts.
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportClassifier } from '../../main/engine/export';
import { loadExportedModel } from '../../main/engine/predict';
import { LABELS, META, smallClassifier } from '../fixtures/small-classifier';

let tmp: string;
let model: tf.LayersModel;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-export-disk-'));
  model = smallClassifier();
});

afterAll(async () => {
  model.dispose();
  await rm(tmp, { recursive: true, force: true });
});

describe('export onto a disk that fills up', () => {
  let mountPoint: string;
  let mounted = false;

  beforeAll(async () => {
    mountPoint = path.join(tmp, 'small-disk');
    await mkdir(mountPoint);
    try {
      // One export (TF.js files + model.onnx, ~180 KB) fits in 256 KiB; a bigger one built beside it does not.
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mountPoint], { stdio: 'pipe' });
      mounted = true;
    } catch {
      mounted = false;
    }
  });

  afterAll(() => {
    if (mounted) execFileSync('umount', [mountPoint]);
  });

  it('fails with an error naming the path, keeps the previous export and removes the temp folder', async (ctx) => {
    const out = path.join(mountPoint, 'exported');
    await exportClassifier(model, META, out);
    const before = await readFile(path.join(out, 'refit.json'), 'utf8');
    let expected: RegExp;
    if (mounted) {
      expected = /Export to .*small-disk\/exported failed while writing .*small-disk\/exported\/.*the disk is full \(ENOSPC\); the previous export in .* is unchanged/;
    } else {
      // Without root (no tmpfs), a write failure is simulated with a read-only parent folder.
      if (process.getuid?.() === 0) return ctx.skip();
      await chmod(mountPoint, 0o555);
      expected = /Export to .*small-disk\/exported failed while writing .*EACCES/;
    }
    const bigger = smallClassifier(1700);
    await expect(exportClassifier(bigger, { ...META, labels: ['x', 'y', 'z'] }, out)).rejects.toThrow(expected);
    bigger.dispose();
    if (!mounted) await chmod(mountPoint, 0o755);
    expect(await readdir(mountPoint)).toEqual(['exported']);
    expect(await readFile(path.join(out, 'refit.json'), 'utf8')).toBe(before);
    const loaded = await loadExportedModel(out); // hashes still match
    expect(loaded.labels).toEqual(LABELS);
    loaded.dispose();
  });
});
