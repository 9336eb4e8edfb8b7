// For the project-wide `tsc` (root tsconfig.json), which does not understand .svelte files.
// svelte-check (renderer/tsconfig.json) excludes this file and checks the real component types.
declare module '*.svelte' {
  import type { Component } from 'svelte';
  const component: Component<any>;
  export default component;
}
