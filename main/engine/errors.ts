/** The first line of an error's message (native libraries append long details below it). */
export function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0].replace(/^Error: /, '').trim();
}

/**
 * The wasm backend's heap is a 32-bit WebAssembly memory (at most 4 GiB): when a network's tensors do
 * not fit, Emscripten aborts or a kernel reads out of bounds. Both are reported as this.
 */
export function isWasmOutOfMemory(err: unknown): boolean {
  const message = err instanceof Error ? err.message : String(err);
  return /^Aborted\(|memory access out of bounds|Cannot enlarge memory|Out of memory|divide by zero/i.test(message);
}

export const WASM_OUT_OF_MEMORY =
  'the WebAssembly compute backend ran out of memory (its heap is limited to 4 GiB): ' +
  'use a smaller batch size or input size, head mode, or a machine with a GPU backend';
