import { createRequire } from 'node:module';

/** Refit's version, from package.json. */
export const REFIT_VERSION = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
