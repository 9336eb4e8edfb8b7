// The compute badge says which engine trains the network phase (onnxruntime or TF.js) and why.
import { describe, expect, it } from 'vitest';
import { mount, unmount } from 'svelte';
import BackendBadge from '../../renderer/src/components/BackendBadge.svelte';
import { backend, settle, target } from './fake-api';

describe('backend badge: the training engine', () => {
  it('names onnxruntime when it trains, with the reason in the details', async () => {
    const el = target();
    const report = { ...backend('wasm'), trainer: { engine: 'onnxruntime' as const, reason: 'onnxruntime-node loads: the default on CPU' } };
    const c = mount(BackendBadge, { target: el, props: { backend: report } });
    await settle(1);
    const badge = el.querySelector<HTMLButtonElement>('[data-testid="backend-badge"]')!;
    expect(badge.textContent!.trim()).toBe('CPU · onnxruntime');
    badge.click();
    await settle(1);
    expect(el.querySelector('[data-testid="trainer-engine"]')!.textContent!.replace(/\s+/g, ' ').trim()).toBe(
      'Fine-tune and full modes train in onnxruntime: onnxruntime-node loads: the default on CPU',
    );
    expect(el.textContent).toContain('the head trains through WebAssembly');
    unmount(c);
  });

  it('keeps the TF.js backend’s name when TF.js trains, and says why', async () => {
    const el = target();
    const report = { ...backend('gpu'), trainer: { engine: 'tfjs' as const, reason: 'TF.js with CUDA (node-gpu) is the fastest engine on this machine' } };
    const c = mount(BackendBadge, { target: el, props: { backend: report } });
    await settle(1);
    const badge = el.querySelector<HTMLButtonElement>('[data-testid="backend-badge"]')!;
    expect(badge.textContent!.trim()).toBe('GPU · CUDA');
    badge.click();
    await settle(1);
    expect(el.querySelector('[data-testid="trainer-engine"]')!.textContent).toContain('train in TF.js: TF.js with CUDA (node-gpu)');
    unmount(c);
  });
});
