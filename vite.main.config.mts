import { defineConfig } from 'vite';

// Native and wasm-backed packages stay outside the bundle and load from node_modules at run time.
export default defineConfig({
  build: {
    rollupOptions: {
      external: ['sharp', '@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'],
    },
  },
});
