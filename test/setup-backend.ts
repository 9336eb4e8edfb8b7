// Every test file runs on the backend a user's machine would pick here (wasm on these machines),
// unless REFIT_BACKEND says otherwise.
import { beforeAll } from 'vitest';
import { initBackend } from '../main/engine/backend';

beforeAll(async () => {
  await initBackend();
});
