#!/usr/bin/env node
// The `refit` command: runs the TypeScript CLI through tsx, so no build step is needed.
import { register } from 'tsx/esm/api';

register();
await import(new URL('../main/host/cli.ts', import.meta.url).href);
