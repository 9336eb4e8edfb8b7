import { describe, expect, it } from 'vitest';
import { forEachLimit, mapLimit } from '../../main/engine/concurrency';

const tick = (ms = 1) => new Promise((resolve) => setTimeout(resolve, ms));

describe('mapLimit', () => {
  it('keeps at most `limit` calls in flight, starts them in order and returns results in order', async () => {
    let inFlight = 0;
    let most = 0;
    const started: number[] = [];
    const out = await mapLimit([5, 1, 4, 2, 3, 1, 2], 3, async (ms, i) => {
      started.push(i);
      most = Math.max(most, ++inFlight);
      await tick(ms);
      inFlight--;
      return ms * 10 + i;
    });
    expect(out).toEqual([50, 11, 42, 23, 34, 15, 26]);
    expect(most).toBe(3);
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('rejects with the first error', async () => {
    await expect(mapLimit([1, 2, 3], 2, async (n) => {
      if (n === 2) throw new Error('two');
      return n;
    })).rejects.toThrow('two');
  });
});

describe('forEachLimit', () => {
  it('starts nothing after the signal aborts, waits for the calls in flight, then throws the abort', async () => {
    const controller = new AbortController();
    const started: number[] = [];
    const finished: number[] = [];
    const run = forEachLimit(Array.from({ length: 20 }, (_, i) => i), 2, async (i) => {
      started.push(i);
      if (i === 3) controller.abort();
      await tick(5);
      finished.push(i);
    }, controller.signal);
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
    expect(started).toEqual([0, 1, 2, 3]);
    expect(finished.sort()).toEqual([0, 1, 2, 3]);
  });

  it('does nothing with an already aborted signal', async () => {
    const seen: number[] = [];
    await expect(forEachLimit([1, 2], 2, async (i) => void seen.push(i), AbortSignal.abort())).rejects.toMatchObject({ name: 'AbortError' });
    expect(seen).toEqual([]);
  });
});
