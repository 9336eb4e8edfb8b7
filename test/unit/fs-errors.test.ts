import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errnoCode, fsErrorDetail, fsErrorMessage, fsErrorReason } from '../../main/engine/errors';

let tmp: string;
let file: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'refit-fs-errors-'));
  file = path.join(tmp, 'a.txt');
  await writeFile(file, 'x');
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const failure = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a failure'); }, (err: unknown) => err);
const withCode = (code: string) => Object.assign(new Error(`${code}: something, open '/x'\n  at somewhere`), { code });

describe('file-system error messages', () => {
  it('name the path and say what went wrong, for real stat / readdir / readFile failures', async () => {
    const missing = path.join(tmp, 'missing');
    expect(fsErrorMessage(await failure(stat(missing)), missing, { noun: 'folder' })).toBe(`Folder not found: ${missing}`);
    expect(fsErrorMessage(await failure(readFile(missing)), missing, { noun: 'image file' })).toBe(`Image file not found: ${missing}`);
    expect(fsErrorMessage(await failure(readFile(missing)), missing, { missing: 'no project here' })).toBe('no project here');
    expect(fsErrorMessage(await failure(readdir(file)), file, { noun: 'folder' })).toBe(`Not a folder: ${file}`);
    const through = path.join(file, 'inner.png');
    expect(fsErrorMessage(await failure(stat(through)), through)).toBe(`File not found: ${through} (a part of its path is a file, not a folder)`);
    expect(fsErrorMessage(await failure(readFile(tmp)), tmp, { noun: 'image file' })).toBe(`${tmp} is a folder, not a file`);
  });

  it('turn common codes into words, keeping the code; unknown codes and other errors keep their first line', () => {
    expect(fsErrorMessage(withCode('EACCES'), '/x', { noun: 'folder' })).toBe('Cannot read folder /x: permission denied (EACCES)');
    expect(fsErrorReason(withCode('EPERM'))).toBe('permission denied');
    expect(fsErrorReason(withCode('EXDEV'))).toBe('EXDEV');
    expect(fsErrorReason(new Error('boom\nstack'))).toBe('boom');
    expect(fsErrorDetail(withCode('ENOSPC'))).toBe('the disk is full (ENOSPC)');
    expect(fsErrorDetail(withCode('EXDEV'))).toBe("EXDEV: something, open '/x'");
    expect(errnoCode('not an error')).toBeUndefined();
    expect(errnoCode(withCode('toString'))).toBe('toString');
    expect(fsErrorReason(withCode('toString'))).toBe('toString');
  });
});
