// An in-memory RefitApi for component tests: it stands for the transport (Electron IPC or the
// WebSocket), answering from the handlers a test gives it and recording every call.
import { flushSync } from 'svelte';
import type { AppInfo, BackendReport, EventName, Events, MethodName, Params, RefitApi, Results } from '../../renderer/src/types';

export type Handlers = { [M in MethodName]?: (params: Params<M>) => Results[M] | Promise<Results[M]> };

export interface FakeApi extends RefitApi {
  calls: { method: MethodName; params: unknown }[];
  callsOf<M extends MethodName>(method: M): Params<M>[];
  emit<E extends EventName>(event: E, payload: Events[E]): void;
  handlers: Handlers;
}

export function fakeApi(handlers: Handlers = {}): FakeApi {
  const listeners = new Map<string, Set<(payload: never) => void>>();
  const calls: FakeApi['calls'] = [];
  return {
    calls,
    handlers,
    callsOf<M extends MethodName>(method: M) {
      return calls.filter((c) => c.method === method).map((c) => c.params as Params<M>);
    },
    async call<M extends MethodName>(method: M, params: Params<M>): Promise<Results[M]> {
      calls.push({ method, params });
      const handler = handlers[method] as ((p: Params<M>) => Results[M] | Promise<Results[M]>) | undefined;
      if (!handler) throw new Error(`fake api: ${method} is not handled in this test`);
      return handler(params);
    },
    on<E extends EventName>(event: E, listener: (payload: Events[E]) => void) {
      let set = listeners.get(event);
      if (!set) listeners.set(event, (set = new Set()));
      set.add(listener as (payload: never) => void);
      return () => set.delete(listener as (payload: never) => void);
    },
    emit<E extends EventName>(event: E, payload: Events[E]) {
      for (const l of listeners.get(event) ?? []) (l as (p: Events[E]) => void)(payload);
    },
  };
}

export function backend(kind: 'gpu' | 'wasm' | 'node'): BackendReport {
  if (kind === 'gpu') return { name: 'node-gpu', tfBackend: 'tensorflow', accelerator: 'gpu', threads: 8, attempts: [{ name: 'node-gpu', ok: true }] };
  if (kind === 'node') return { name: 'node', tfBackend: 'tensorflow', accelerator: 'cpu', threads: 8, attempts: [{ name: 'node', ok: true }] };
  return {
    name: 'wasm',
    tfBackend: 'wasm',
    accelerator: 'cpu',
    threads: 1,
    attempts: [
      { name: 'node-gpu', ok: false, reason: '@tensorflow/tfjs-node-gpu is not installed' },
      { name: 'node', ok: false, reason: '@tensorflow/tfjs-node is not installed' },
      { name: 'wasm', ok: true },
    ],
  };
}

export const PROJECT = { dir: '/projects/demo', name: 'demo', classes: [], exclusions: [] };

export function appInfo(kind: 'gpu' | 'wasm' | 'node' = 'wasm', withProject = true): AppInfo {
  return { version: '0.1.0', backend: backend(kind), host: 'browser', project: withProject ? PROJECT : null };
}

/** Lets pending promises settle and Svelte apply the resulting updates. */
export async function settle(rounds = 6): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    await new Promise((r) => setTimeout(r, 0));
    flushSync();
  }
}

export function target(): HTMLElement {
  const el = document.createElement('div');
  document.body.append(el);
  return el;
}

export function byText(root: ParentNode, selector: string, text: string | RegExp): HTMLElement | undefined {
  return Array.from(root.querySelectorAll<HTMLElement>(selector)).find((el) => (typeof text === 'string' ? el.textContent?.trim() === text : text.test(el.textContent ?? '')));
}

/** A button by its accessible name (text content, or aria-label). */
export function button(root: ParentNode, name: string): HTMLButtonElement | undefined {
  return Array.from(root.querySelectorAll<HTMLButtonElement>('button')).find((b) => (b.getAttribute('aria-label') ?? b.textContent ?? '').replace(/\s+/g, ' ').trim() === name);
}
