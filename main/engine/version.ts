import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Refit's package.json: the nearest one above this module (the sources, or a compiled bundle's folder). */
function refitPackage(): { name?: string; version: string } {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version: string };
      if (pkg.name === 'refit') return pkg;
    } catch {
      // not here: look further up
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('Refit cannot find its package.json');
    dir = parent;
  }
}

/** Refit's version, from package.json. */
export const REFIT_VERSION = refitPackage().version;
