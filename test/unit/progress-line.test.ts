// The CLI's progress line, drawn through a fake writer: what a terminal would get, and what a pipe would not.
import path from 'node:path';
import { Command } from 'commander';
import { describe, expect, it, vi } from 'vitest';
import { registerInspect } from '../../main/host/commands/inspect';
import type { CommandIO } from '../../main/host/commands/io';
import { fitToWidth, formatDuration, formatEta, formatProgress, ProgressLine, type ProgressOutput } from '../../main/host/progress-line';

const ERASE = '\r\x1b[K';
const BIRDS = path.resolve(__dirname, '../../../shared/datasets/photos5/birds');

type FakeOutput = Required<Pick<ProgressOutput, 'stderr' | 'stdout'>> & ProgressOutput & { err: string; out: string };

function fakeOutput(stderrIsTTY: boolean, columns?: number): FakeOutput {
  const output = {
    err: '',
    out: '',
    stderrIsTTY,
    columns,
    stderr: (text: string) => void (output.err += text),
    stdout: (text: string) => void (output.out += text),
  };
  return output;
}

/** A clock the test moves by hand, in milliseconds. */
function fakeClock(start = 1000) {
  const clock = { t: start, now: () => clock.t };
  return clock;
}

describe('ProgressLine', () => {
  it('draws each update over the last one with \\r\\x1b[K on a terminal', () => {
    const out = fakeOutput(true, 80);
    const clock = fakeClock();
    const line = new ProgressLine(out, { now: clock.now });
    expect(line.active).toBe(true);
    line.update('scanning 1/3');
    clock.t += 200;
    line.update('scanning 2/3');
    expect(out.err).toBe(`${ERASE}scanning 1/3${ERASE}scanning 2/3`);
    expect(out.out).toBe('');
  });

  it('draws nothing when stderr is not a terminal, or when turned off (--json)', () => {
    for (const [tty, enabled] of [
      [false, true],
      [true, false],
    ]) {
      const out = fakeOutput(tty, 80);
      const line = new ProgressLine(out, { enabled });
      expect(line.active).toBe(false);
      line.update('scanning 1/3');
      line.status({ label: 'predicting', done: 1, total: 3, rateUnit: 'img/s' });
      line.counter('predicting', () => Promise.resolve(3))(2);
      line.clear();
      expect(out.err).toBe('');
    }
  });

  it('cuts the line to the terminal width (one column spare), with an ellipsis', () => {
    const out = fakeOutput(true, 20);
    const line = new ProgressLine(out);
    line.update('predicting 12/40 (30%) · 3.4 img/s · ETA 8s');
    const drawn = out.err.slice(ERASE.length);
    expect(drawn).toBe('predicting 12/40 (…');
    expect([...drawn]).toHaveLength(19);
    // Without a known width: 100 columns.
    const wide = fakeOutput(true);
    new ProgressLine(wide).update('x'.repeat(300));
    expect(wide.err.length).toBe(ERASE.length + 99);
  });

  it('fits by characters, not UTF-16 units, and keeps to one line', () => {
    expect(fitToWidth('a\nb\r\nc', 80)).toBe('a b c');
    expect(fitToWidth('🐦'.repeat(30), 11)).toBe('🐦'.repeat(9) + '…');
    expect(fitToWidth('short', 80)).toBe('short');
  });

  it('clear() erases only when something is shown', () => {
    const out = fakeOutput(true, 80);
    const line = new ProgressLine(out);
    line.clear();
    expect(out.err).toBe('');
    line.update('exporting');
    line.clear();
    line.clear();
    expect(out.err).toBe(`${ERASE}exporting${ERASE}`);
  });

  it('print() clears the line, then writes a permanent line on stdout', () => {
    const out = fakeOutput(true, 80);
    const line = new ProgressLine(out);
    line.update('training');
    line.print('epoch 1: loss 0.5');
    expect(out.err).toBe(`${ERASE}training${ERASE}`);
    expect(out.out).toBe('epoch 1: loss 0.5\n');
  });

  it('skips redraws closer than minIntervalMs while shown, but never the first after clear()', () => {
    const out = fakeOutput(true, 80);
    const clock = fakeClock();
    const line = new ProgressLine(out, { now: clock.now, minIntervalMs: 100 });
    line.update('a');
    clock.t += 50;
    line.update('b'); // too soon
    clock.t += 60;
    line.update('c');
    line.update('c');
    line.clear();
    line.update('d'); // at once after clear()
    expect(out.err).toBe(`${ERASE}a${ERASE}c${ERASE}${ERASE}d`);
  });

  it('draws the last throttled text once the interval is over, unless cleared; a finished status at once', () => {
    vi.useFakeTimers();
    try {
      const out = fakeOutput(true, 80);
      const clock = fakeClock();
      const line = new ProgressLine(out, { now: clock.now, minIntervalMs: 30 });
      const wait = (ms: number) => {
        clock.t += ms;
        vi.advanceTimersByTime(ms);
      };
      line.update('saving 1/2');
      line.update('saving best checkpoint'); // throttled…
      expect(out.err).toBe(`${ERASE}saving 1/2`);
      wait(29);
      expect(out.err).toBe(`${ERASE}saving 1/2`);
      wait(1);
      expect(out.err).toBe(`${ERASE}saving 1/2${ERASE}saving best checkpoint`); // …not dropped
      wait(40);
      line.update('x'); // the interval is over: drawn at once
      line.update('z'); // throttled, then cleared: never drawn
      line.clear();
      wait(100);
      expect(out.err).toBe(`${ERASE}saving 1/2${ERASE}saving best checkpoint${ERASE}x${ERASE}`);

      const done = fakeOutput(true, 80);
      const status = new ProgressLine(done, { now: clock.now, minIntervalMs: 10_000 });
      status.status({ label: 'checking images', done: 1, total: 2 });
      status.status({ label: 'checking images', done: 2, total: 2 });
      expect(done.err).toContain('checking images 2/2 (100%)');
    } finally {
      vi.useRealTimers();
    }
  });

  it('status() times each label from its first report: rate and ETA', () => {
    const out = fakeOutput(true, 120);
    const clock = fakeClock();
    const line = new ProgressLine(out, { now: clock.now });
    line.status({ label: 'checking images', done: 0, total: 40, rateUnit: 'img/s' });
    clock.t += 4000;
    line.status({ label: 'checking images', done: 10, total: 40, rateUnit: 'img/s' });
    expect(out.err).toBe(`${ERASE}checking images 0/40 (0%)${ERASE}checking images 10/40 (25%) · 2.5 img/s · ETA 12s`);
    out.err = '';
    line.status({ label: 'exporting: write', fraction: 0 }); // a new label: a new clock
    clock.t += 2000;
    line.status({ label: 'exporting: write', fraction: 0.5 });
    expect(out.err).toBe(`${ERASE}exporting: write 0%${ERASE}exporting: write 50% · ETA 2s`);
  });

  it('counter() shows done alone until the total is counted, then done/total and an ETA', async () => {
    const out = fakeOutput(true, 120);
    const clock = fakeClock();
    const line = new ProgressLine(out, { now: clock.now });
    let resolveTotal!: (n: number) => void;
    const show = line.counter('predicting', () => new Promise<number>((resolve) => (resolveTotal = resolve)));
    show(0);
    clock.t += 1000;
    line.clear();
    show(4);
    resolveTotal(20);
    await Promise.resolve();
    clock.t += 1000;
    line.clear();
    show(8);
    expect(out.err.split(ERASE).filter(Boolean)).toEqual(['predicting 0', 'predicting 4 · 4.0 img/s', 'predicting 8/20 (40%) · 4.0 img/s · ETA 3s']);
  });

  it('counter() without a total, or with a count that fails, shows the count and the rate', async () => {
    const out = fakeOutput(true, 120);
    const clock = fakeClock();
    const line = new ProgressLine(out, { now: clock.now });
    const show = line.counter('classifying', () => Promise.reject(new Error('unreadable folder')));
    await Promise.resolve();
    show(0);
    clock.t += 2000;
    line.clear();
    show(3);
    expect(out.err).toContain('classifying 3 · 1.5 img/s');
    expect(out.err).not.toContain('ETA');
  });
});

describe('progress text', () => {
  it('formatDuration: seconds, minutes and seconds, hours and minutes', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(42.4)).toBe('42s');
    expect(formatDuration(65)).toBe('1m05s');
    expect(formatDuration(3599)).toBe('59m59s');
    expect(formatDuration(3720)).toBe('1h02m');
    expect(formatDuration(Infinity)).toBe('?');
  });

  it('formatEta: from time spent and the fraction done; none before a start or after the end', () => {
    expect(formatEta(10, 0.25)).toBe('ETA 30s');
    expect(formatEta(60, 0.5)).toBe('ETA 1m00s');
    expect(formatEta(10, 0)).toBeUndefined();
    expect(formatEta(10, 1)).toBeUndefined();
    expect(formatEta(0, 0.5)).toBeUndefined();
  });

  it('formatProgress: label done/total (pct%) · rate · ETA', () => {
    expect(formatProgress({ label: 'predicting', done: 12, total: 40, elapsedSeconds: 4, rateUnit: 'img/s' })).toBe('predicting 12/40 (30%) · 3.0 img/s · ETA 9s');
    expect(formatProgress({ label: 'predicting', done: 40, total: 40, elapsedSeconds: 4, rateUnit: 'img/s' })).toBe('predicting 40/40 (100%) · 10.0 img/s');
    expect(formatProgress({ label: 'predicting', done: 12, elapsedSeconds: 4, rateUnit: 'img/s' })).toBe('predicting 12 · 3.0 img/s');
    expect(formatProgress({ label: 'scanning images', done: 3, total: 0 })).toBe('scanning images 3/0');
    expect(formatProgress({ label: 'exporting: serialize', fraction: 0.999, elapsedSeconds: 1 })).toBe('exporting: serialize 99% · ETA 0s');
    expect(formatProgress({ label: 'exporting: load' })).toBe('exporting: load');
  });
});

describe('a command drawing through its CommandIO', () => {
  async function inspect(io: CommandIO, ...args: string[]) {
    const program = new Command('refit').exitOverride();
    registerInspect(program, io).exitOverride();
    await program.parseAsync(['inspect', ...args], { from: 'user' });
  }

  function terminalIO(): CommandIO & { err: string; out: string } {
    return Object.assign(fakeOutput(true, 60), { setExitCode: () => undefined });
  }

  it('`refit inspect` on a terminal shows "checking images done/total", cleared before the report', async () => {
    const io = terminalIO();
    await inspect(io, BIRDS);
    const drawn = io.err.split(ERASE).filter(Boolean);
    expect(drawn.length).toBeGreaterThan(0);
    for (const text of drawn) {
      expect(text).toMatch(/^checking images \d+\/35 \(\d+%\)/);
      expect([...text].length).toBeLessThanOrEqual(59);
    }
    expect(io.err.endsWith(ERASE)).toBe(true);
    expect(io.out).not.toContain('\x1b');
    expect(io.out).toMatch(/^1 class, 35 usable images/);
  });

  it('`refit inspect --json` on a terminal draws nothing', async () => {
    const io = terminalIO();
    await inspect(io, BIRDS, '--json');
    expect(io.err).toBe('');
    expect(JSON.parse(io.out).classes).toHaveLength(1);
  });
});
