// Placeholder: replaced by the real kernels.
export function registerWasmGradKernels(): void {}
