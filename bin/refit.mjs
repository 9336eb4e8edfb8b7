#!/usr/bin/env node
// The `refit` command: runs the compiled CLI (plain JavaScript in dist/cli/<key>/, built by esbuild
// at `npm ci` or, after a source change, on the first run; see cli-build.mjs). Nothing is transpiled
// at run time.
import { pathToFileURL } from 'node:url';
import { ensureCli } from './cli-build.mjs';

await import(pathToFileURL(await ensureCli()).href);
