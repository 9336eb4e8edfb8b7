// Runs `refit train … --json` as a real CLI process for the benchmarks: its JSON event lines, wall
// time, and the peak memory (VmHWM) of the training process it starts, polled from /proc.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REFIT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/refit.mjs');

export interface TrainRun {
  seconds: number;
  // Events as the CLI prints them (main/api/training.ts TrainEvent); loosely typed for quick reading.
  events: any[];
  trainingProcessPeakRssMiB: number;
}

/** Whether `pid` is `ancestor` or one of its descendants. */
function descendsFrom(pid: string, ancestor: number): boolean {
  for (let p = Number(pid); p > 1; ) {
    if (p === ancestor) return true;
    p = Number(readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
  }
  return false;
}

/** Peak resident memory of the training process started under `root` (not other runs on the machine). */
function watchTrainingProcess(root: number): { stop: () => number } {
  let peakKiB = 0;
  const poll = () => {
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('train-worker') || !descendsFrom(pid, root)) continue;
        const hwm = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        if (hwm) peakKiB = Math.max(peakKiB, Number(hwm[1]));
      } catch {
        // the process ended between listing and reading
      }
    }
  };
  const timer = setInterval(poll, 200);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.round(peakKiB / 1024);
    },
  };
}

/** `refit train ARGS --json` with extra environment variables; rejects when it exits non-zero. */
export async function runRefitTrain(args: string[], env: Record<string, string> = {}): Promise<TrainRun> {
  const start = performance.now();
  const lines: string[] = [];
  let peak = 0;
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [REFIT, 'train', ...args, '--json'], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
    const watch = watchTrainingProcess(child.pid!);
    let buffer = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const parts = buffer.split('\n');
      buffer = parts.pop()!;
      lines.push(...parts.filter(Boolean));
    });
    child.on('exit', (code) => {
      peak = watch.stop();
      if (code === 0) resolve();
      else reject(new Error(`refit train ${args.join(' ')} exited with ${code}`));
    });
  });
  const events = lines.flatMap((l) => {
    try {
      return [JSON.parse(l)];
    } catch {
      process.stderr.write(`(not JSON) ${l}\n`);
      return [];
    }
  });
  return { seconds: (performance.now() - start) / 1000, events, trainingProcessPeakRssMiB: peak };
}
