// prefetchBatches is the one batching loop (training, feature extraction, prediction): batches in
// order from an array or a lazily produced sequence, the next one decoded while the consumer works on
// the current one (never more), every batch's pixels freed, the source closed and the read-ahead
// freed when the consumer stops early, and a failing source surfacing once, never unhandled.
import { describe, it, expect, vi } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { prefetchBatches, type DecodedBatch } from '../../main/engine/image-batches';

/** A fake decoder: one 1×1 "image" per item, whose pixel is the item; counts decodes in flight. */
function fakeDecoder() {
  const state = { inFlight: 0, maxInFlight: 0, calls: [] as number[][] };
  const decode = async (batch: number[]): Promise<DecodedBatch<number>> => {
    state.calls.push(batch);
    state.inFlight++;
    state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
    await new Promise((r) => setTimeout(r, 1));
    state.inFlight--;
    const ok = batch.filter((i) => i % 5 !== 4); // every fifth item "fails to decode"
    return {
      batch,
      items: ok,
      pixels: ok.length ? tf.tensor4d(ok.flatMap((i) => [i, i, i]), [ok.length, 1, 1, 3]) : null,
      failures: batch.filter((i) => i % 5 === 4).map((item) => ({ item, error: `bad ${item}` })),
    };
  };
  return { state, decode };
}

async function* lazy(n: number, onReturn?: () => void): AsyncGenerator<number> {
  try {
    for (let i = 0; i < n; i++) {
      await new Promise((r) => setTimeout(r, 0));
      yield i;
    }
  } finally {
    onReturn?.();
  }
}

describe('prefetchBatches', () => {
  it('gives the batches of an array or an async sequence in order, decoding one ahead, freeing every batch', async () => {
    for (const source of [() => Array.from({ length: 11 }, (_, i) => i), () => lazy(11)]) {
      const { state, decode } = fakeDecoder();
      const before = tf.memory().numTensors;
      const seen: number[][] = [];
      for await (const b of prefetchBatches(source(), 4, decode)) {
        seen.push(b.batch);
        expect(b.items).toEqual(b.batch.filter((i) => i % 5 !== 4));
        expect(Array.from(await b.pixels!.data()).filter((_, k) => k % 3 === 0)).toEqual(b.items);
        await new Promise((r) => setTimeout(r, 5)); // the next batch decodes meanwhile
      }
      expect(seen).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10]]);
      expect(state.calls).toEqual(seen);
      expect(state.maxInFlight).toBe(1);
      expect(tf.memory().numTensors).toBe(before);
    }
  });

  it('frees the batch decoded ahead and closes the source when the consumer stops early', async () => {
    const { state, decode } = fakeDecoder();
    const closed = vi.fn();
    const before = tf.memory().numTensors;
    for await (const b of prefetchBatches(lazy(100, closed), 3, decode)) {
      if (b.batch[0] === 3) break;
    }
    expect(state.calls.map((c) => c[0])).toEqual([0, 3, 6]); // one batch read ahead, no more
    expect(closed).toHaveBeenCalledTimes(1);
    expect(tf.memory().numTensors).toBe(before);

    const stop = new Error('consumer failed');
    const run = async () => {
      for await (const b of prefetchBatches([1, 2, 3, 4, 5, 6], 2, decode)) if (b.batch[0] === 3) throw stop;
    };
    await expect(run()).rejects.toBe(stop);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('reports a failing source where it is awaited, once, and never as an unhandled rejection', async () => {
    const { decode } = fakeDecoder();
    const unhandled = vi.fn();
    process.on('unhandledRejection', unhandled);
    try {
      async function* failing(): AsyncGenerator<number> {
        yield 1;
        yield 2;
        throw new Error('cannot list folder');
      }
      const seen: number[][] = [];
      const run = async () => {
        for await (const b of prefetchBatches(failing(), 2, decode)) {
          seen.push(b.batch);
          await new Promise((r) => setTimeout(r, 20)); // the read-ahead fails while this batch is in use
        }
      };
      await expect(run()).rejects.toThrow('cannot list folder');
      expect(seen).toEqual([[1, 2]]);
      await new Promise((r) => setTimeout(r, 20));
      expect(unhandled).not.toHaveBeenCalled();
    } finally {
      process.off('unhandledRejection', unhandled);
    }
    await expect(prefetchBatches([1], 0, decode).next()).rejects.toThrow(/batchSize must be a positive integer/);
  });
});
