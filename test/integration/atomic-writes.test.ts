// Atomic writes under real failures the kernel produces, each in a child process (moved out of
// test/unit/project.test.ts): a file size limit that stops a write half-way, and a read-only project
// folder for an unprivileged user.
import { spawnSync } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createProject } from '../../main/engine/project';
import { readableTempDir, runUnprivileged, unprivilegedScript } from '../fixtures/unprivileged';

const PHOTOS5 = path.resolve(__dirname, '../../../shared/datasets/photos5');
const REPO = path.resolve(__dirname, '../..');

describe('atomic writes', () => {
  it('leaves the old file intact when the disk refuses the write half-way (file size limit)', async () => {
    // `ulimit -f` makes the kernel refuse writes past 8 KiB with EFBIG: a real failure in the middle of
    // writing the temporary file, like a full disk.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'refit-efbig-'));
    try {
      const target = path.join(dir, 'project.json');
      await writeFile(target, '{"old": true}\n');
      const script = path.join(dir, 'write.mts');
      await writeFile(
        script,
        `import { writeJsonAtomic } from ${JSON.stringify(path.join(REPO, 'main/engine/atomic-fs'))};\n` +
          `try { await writeJsonAtomic(${JSON.stringify(target)}, { big: 'x'.repeat(200_000) }); console.log('written'); }\n` +
          `catch (err) { console.log((err as NodeJS.ErrnoException).code); }\n`,
      );
      const result = spawnSync('sh', ['-c', `ulimit -f 8; exec "${process.execPath}" --import tsx "${script}"`], { cwd: REPO, encoding: 'utf8' });
      expect(result.stdout.trim(), result.stderr).toBe('EFBIG');
      expect(await readFile(target, 'utf8')).toBe('{"old": true}\n');
      expect((await readdir(dir)).sort()).toEqual(['project.json', 'write.mts']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('fails without touching the old project when its folder is read-only (as an unprivileged user)', async () => {
    // root writes through chmod 555, so the edit runs as "nobody" when the tests run as root (see
    // test/fixtures/unprivileged.ts); the images it adds are copied next to the project, where nobody
    // can read them.
    const dir = await readableTempDir('refit-readonly-');
    try {
      const images = path.join(dir, 'images', 'fruit');
      await mkdir(images, { recursive: true });
      for (const name of (await readdir(path.join(PHOTOS5, 'fruit'))).filter((n) => n.endsWith('.png')).sort().slice(0, 3)) {
        await copyFile(path.join(PHOTOS5, 'fruit', name), path.join(images, name));
      }
      const project = await createProject(path.join(dir, 'p'), { name: 'ro' });
      const before = await readFile(path.join(project.dir, 'project.json'), 'utf8');
      await chmod(project.dir, 0o555);
      await chmod(path.join(project.dir, 'project.json'), 0o444);
      const script = path.join(dir, 'edit.mts');
      await writeFile(
        script,
        unprivilegedScript(
          { 'main/engine/project': ['openProject', 'addSources'] },
          `const p = await openProject(${JSON.stringify(project.dir)});\n` +
            `try { await addSources(p, [${JSON.stringify(images)}]); console.log('written'); } catch (err) { console.log((err as NodeJS.ErrnoException).code, p.data.classes.length); }`,
        ),
      );
      const result = runUnprivileged(script);
      expect(result.stdout.trim(), result.stderr).toBe('EACCES 0');
      expect(await readFile(path.join(project.dir, 'project.json'), 'utf8')).toBe(before);
    } finally {
      await chmod(path.join(dir, 'p'), 0o755).catch(() => {});
      await rm(dir, { recursive: true, force: true });
    }
  });
});
