// npx tsx bench/import.ts [-- --per-class 500 --data DIR]
// Import time for a Fashion-MNIST folder dataset (10 classes × per-class 28×28 PNGs, default 5,000
// files): "cold" is a new project (every file read, hashed, decoded); "warm" is a rescan of the same
// project, where index.json (path + size + mtime) spares re-reading unchanged files. Each phase runs
// in its own process so that its peak RSS is its own. The OS page cache is warm in both (dropping it
// needs privileges this bench does not assume). Prints a table, then JSON.
import { execFileSync, fork } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatTable } from '../main/host/format';

interface PhaseResult {
  phase: 'cold' | 'warm';
  files: number;
  images: number;
  problems: number;
  seconds: number;
  filesPerSec: number;
  peakRssMiB: number;
}

const { values } = parseArgs({
  options: {
    'per-class': { type: 'string', default: '500' },
    data: { type: 'string' },
    phase: { type: 'string' },
    project: { type: 'string' },
  },
});

async function runPhase(phase: 'cold' | 'warm', dataDir: string, projectDir: string): Promise<PhaseResult> {
  const { addSources, createProject, openProject, scanProject } = await import('../main/engine/project');
  const start = performance.now();
  const project = phase === 'cold' ? await addSources(await createProject(projectDir, { name: 'bench' }), [dataDir]) : await openProject(projectDir);
  const report = await scanProject(project);
  const seconds = (performance.now() - start) / 1000;
  const files = report.images.length + report.problems.length;
  return {
    phase,
    files,
    images: report.images.length,
    problems: report.problems.length,
    seconds: Number(seconds.toFixed(3)),
    filesPerSec: Math.round(files / seconds),
    peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

function inChild(phase: 'cold' | 'warm', dataDir: string, projectDir: string): Promise<PhaseResult> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), ['--phase', phase, '--data', dataDir, '--project', projectDir], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.once('message', (message) => resolve(message as PhaseResult));
    child.once('exit', (code) => code !== 0 && reject(new Error(`${phase} phase exited with code ${code}`)));
  });
}

if (values.phase) {
  const result = await runPhase(values.phase as 'cold' | 'warm', values.data!, values.project!);
  process.send!(result);
} else {
  const work = await mkdtemp(path.join(os.tmpdir(), 'refit-bench-import-'));
  try {
    let dataDir = values.data;
    if (!dataDir) {
      dataDir = path.join(work, 'fashion-mnist');
      const tool = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../shared/tools/fashion-mnist-folders.py');
      execFileSync('python3', [tool, dataDir, '--per-class', values['per-class']!], { stdio: 'ignore' });
    }
    const projectDir = path.join(work, 'project');
    const cold = await inChild('cold', dataDir, projectDir);
    const warm = await inChild('warm', dataDir, projectDir);
    const indexBytes = (await stat(path.join(projectDir, 'index.json'))).size;
    const rows = [cold, warm];
    console.log(
      formatTable(
        ['phase', 'files', 'images', 'problems', 'seconds', 'files/s', 'peak RSS MiB'],
        rows.map((r) => [r.phase, r.files, r.images, r.problems, r.seconds, r.filesPerSec, r.peakRssMiB]),
      ),
    );
    console.log(`index.json: ${(indexBytes / 1024).toFixed(0)} KiB; ${os.availableParallelism()} cores; node ${process.version}`);
    console.log(JSON.stringify({ benchmark: 'import', dataset: dataDir, cores: os.availableParallelism(), indexBytes, phases: rows }, null, 2));
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
