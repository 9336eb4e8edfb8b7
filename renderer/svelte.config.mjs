// Svelte options for the renderer (Vite root). TypeScript in <script lang="ts"> is handled by
// Svelte 5 itself (type annotations only; no enums or decorators), so no preprocessor is needed.
export default {
  compilerOptions: {
    runes: true,
  },
};
