// `refit inspect <folders...> [--json]`: the dataset report (classes, problems, warnings) without training.
import type { Command } from 'commander';
import type { DatasetReport, ProblemKind } from '../../api/dataset';
import { formatTable } from '../format';
import { positiveInt } from '../cli-common';
import { ProgressLine } from '../progress-line';
import { EXIT_INTERRUPTED, InterruptedError, processIO, withInterrupt, type CommandIO } from './io';

interface InspectCliOptions {
  json?: boolean;
  maxPixels?: number;
}

const KIND_TITLES: Record<ProblemKind, string> = {
  'not-image': 'Not images',
  corrupt: 'Corrupt or truncated',
  empty: 'Empty files',
  unreadable: 'Unreadable',
  'too-large': 'Too large',
  duplicate: 'Same image in two classes (no copy used)',
  'duplicate-in-class': 'Same image twice in a class (used once)',
  missing: 'Missing',
  'symlink-loop': 'Symbolic link loops (not followed)',
  'link-outside': 'Links out of their class folder (not followed)',
};

/** The --json document: exactly {classes, problems, warnings}. */
export function inspectJson(report: DatasetReport): { classes: DatasetReport['classes']; problems: DatasetReport['problems']; warnings: string[] } {
  return { classes: report.classes, problems: report.problems, warnings: report.warnings };
}

export function formatInspectReport(report: DatasetReport): string {
  const total = report.classes.reduce((sum, c) => sum + c.images, 0);
  const lines = [
    `${report.classes.length} class${report.classes.length === 1 ? '' : 'es'}, ${total} usable image${total === 1 ? '' : 's'}`,
    '',
    formatTable(
      ['class', 'images', 'folders'],
      report.classes.map((c) => [c.name, c.images, c.folders.join(', ')]),
    ),
  ];
  if (report.problems.length > 0) {
    lines.push('', `Problems (${report.problems.length} file${report.problems.length === 1 ? '' : 's'} skipped):`);
    const byKind = new Map<ProblemKind, DatasetReport['problems']>();
    for (const problem of report.problems) byKind.set(problem.kind, [...(byKind.get(problem.kind) ?? []), problem]);
    for (const [kind, problems] of byKind) {
      lines.push(`  ${KIND_TITLES[kind] ?? kind} (${problems.length}):`);
      for (const p of problems) lines.push(`    ${p.file}`, `      ${p.reason}`);
    }
  }
  if (report.warnings.length > 0) lines.push('', 'Warnings:', ...report.warnings.map((w) => `  - ${w}`));
  return lines.join('\n') + '\n';
}

export function registerInspect(program: Command, io: CommandIO = processIO): Command {
  return program
    .command('inspect')
    .description('Check image folders as a dataset, without training: classes, per-file problems, warnings')
    .argument('<folders...>', 'a folder of images (one class), or a folder of class folders')
    .option('--json', 'print {"classes": [{name, images, folders}], "problems": [{file, kind, reason}], "warnings": [...]}')
    .option('--max-pixels <n>', 'report images with more pixels than this as too large', positiveInt)
    .addHelpText(
      'after',
      '\nA folder holding images directly is one class named after it; a folder holding only sub-folders gives one class per sub-folder ' +
        '(images are found recursively). Classes with the same name merge.\nExit code 1 when no image is usable; 130 when interrupted.',
    )
    .action(async (folders: string[], options: InspectCliOptions) => {
      const { classSourcesFromFolders } = await import('../../engine/dataset-sources');
      const { scanDataset } = await import('../../engine/dataset-scan');
      const line = new ProgressLine(io, { enabled: !options.json });
      let report: DatasetReport;
      try {
        report = await withInterrupt(async (signal) =>
          scanDataset(await classSourcesFromFolders(folders), {
            signal,
            maxPixels: options.maxPixels,
            onProgress: line.active ? (done, total) => line.status({ label: 'checking images', done, total, rateUnit: 'img/s' }) : undefined,
          }),
        );
      } catch (err) {
        line.clear();
        if (!(err instanceof InterruptedError)) throw err;
        io.stderr('Interrupted.\n');
        io.setExitCode(EXIT_INTERRUPTED);
        return;
      }
      line.clear();
      io.stdout(options.json ? JSON.stringify(inspectJson(report), null, 2) + '\n' : formatInspectReport(report));
      if (report.images.length === 0) {
        if (!options.json) io.stderr('No usable images.\n');
        io.setExitCode(1);
      }
    });
}
