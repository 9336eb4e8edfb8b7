// `refit weights list [--json]`, `refit weights get BACKBONE [--source NAME]` and `refit weights import
// BACKBONE FILE [--source NAME]`: the weights catalogue (every backbone × published ImageNet weight set,
// and whether it is on this machine), downloading a set (the only network access Refit makes), and
// importing a publisher's file into the user's weights cache, converted and checked tensor by tensor.
import { InvalidArgumentError, type Command } from 'commander';
import { formatTable } from '../format';
import { formatDuration, ProgressLine } from '../progress-line';
import { EXIT_INTERRUPTED, processIO, withInterrupt, type CommandIO } from './io';

export async function weightsList() {
  const { weightSetRows } = await import('../../engine/service/weights-session');
  return weightSetRows();
}

export function registerWeights(program: Command, io: CommandIO = processIO): Command {
  const weights = program.command('weights').description('ImageNet weight sets: list them, download one, import a downloaded file');
  weights
    .command('list')
    .description('Every backbone × published ImageNet weight set: publisher, top-1, size, present or not, where')
    .option('--json', 'print a JSON array')
    .action(async (options: { json?: boolean }) => {
      const rows = await weightsList();
      if (options.json) return io.stdout(JSON.stringify(rows, null, 2) + '\n');
      const { weightsRoot } = await import('../../../models/weights/store');
      io.stdout(
        formatTable(
          ['backbone', 'set', 'publisher', 'top-1', 'size', 'present'],
          rows.map((r) => [r.backbone, `${r.set}${r.default ? ' (default)' : ''}`, r.publisher, `${r.top1.toFixed(1)}%`, r.sizeMiB ? `${Math.round(r.sizeMiB)} MiB` : '—', r.present ? (r.where ?? 'yes') : 'no']),
        ) + `\nWeights cache: ${weightsRoot()}\nDownload a set: refit weights get BACKBONE [--source SET]\nImport a downloaded file: refit weights import BACKBONE FILE [--source SET]\n`,
      );
    });
  weights
    .command('get')
    .description('Download a weight set from its publisher, verify its checksum and store it converted in the weights cache (the only command that uses the network)')
    .argument('<backbone>', 'backbone id, e.g. resnet18')
    .option('--source <set>', "the weight set (default: the backbone's default downloadable set; see refit weights list)")
    .option('--url <base>', `download from this base URL instead of the publisher's (the published file name is appended; also $REFIT_WEIGHTS_BASE_URL)`)
    .option('--retries <n>', 'new connections after a dropped one or a server error, each continuing where the last stopped', nonNegativeInt, 4)
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nA dropped connection is retried and the download continues where it stopped (also after Ctrl-C: run the same command again).\nNothing is usable until the whole file has matched the published checksum and every tensor has been converted and stored.',
    )
    .action(async (backbone: string, options: { source?: string; url?: string; retries: number; json?: boolean }) => {
      const line = new ProgressLine(io, { enabled: !options.json });
      try {
        const { downloadWeightSet, downloadableSet, downloadUrl, formatMB, DownloadCancelledError } = await import('../../engine/weights-download');
        const { getBackboneSpec } = await import('../../../models/catalog');
        const id = getBackboneSpec(backbone).id;
        const entry = downloadableSet(id, options.source);
        const url = downloadUrl(entry, options.url);
        if (!options.json) io.stderr(`Downloading ${id} ${entry.id} (${entry.publisher}${entry.sizeMiB ? `, ${formatMB(entry.sizeMiB * 2 ** 20)}` : ''}) from ${url}\n`);
        let result;
        try {
          result = await withInterrupt((signal) =>
            downloadWeightSet(id, entry, {
              ...(options.url ? { baseUrl: options.url } : {}),
              retries: options.retries,
              signal,
              onRetry: (message) => {
                line.clear();
                if (!options.json) io.stderr(`${message}\n`);
              },
              onProgress: (p) => {
                if (p.phase !== 'downloading') return line.update(`${p.phase} ${entry.fileName}`);
                const amount = p.total ? `${formatMB(p.bytes)} / ${formatMB(p.total)} (${Math.floor((p.bytes / p.total) * 100)}%)` : formatMB(p.bytes);
                const rate = p.bytesPerSecond > 0 ? ` · ${formatMB(p.bytesPerSecond)}/s` : '';
                const eta = p.etaSeconds !== undefined ? ` · ETA ${formatDuration(p.etaSeconds)}` : '';
                line.update(`downloading ${entry.fileName} ${amount}${rate}${eta}${p.resumedFrom ? ` · resumed at ${formatMB(p.resumedFrom)}` : ''}`);
              },
            }),
          );
        } catch (err) {
          if (err instanceof DownloadCancelledError) {
            line.clear();
            io.stderr(`refit weights get: ${err.message}\n`);
            io.setExitCode(EXIT_INTERRUPTED);
            return;
          }
          throw err;
        }
        line.clear();
        const m = result.manifest;
        if (options.json) {
          io.stdout(JSON.stringify({ backbone: m.backbone, set: m.set, publisher: m.publisher, variant: m.variant, licence: m.licence, url: result.url, bytes: result.bytes, verified: result.verified, attempts: result.attempts, resumed: result.resumed, dir: result.dir, tensors: result.tensors, sha256: m.source.sha256 }, null, 2) + '\n');
        } else {
          io.stdout(
            `Stored ${m.backbone} ${m.set} (${m.publisher}, ${m.variant}): ${result.tensors} tensors → ${result.dir}\n` +
              `${result.verified}${result.resumed ? `; resumed ${result.resumed}×` : ''}\n` +
              `Licence: ${m.licence}\n` +
              `Train with it: refit train DATA --backbone ${m.backbone} --weights ${m.set}\n`,
          );
        }
      } catch (err) {
        line.clear();
        io.stderr(`refit weights get: ${err instanceof Error ? err.message : String(err)}\n`);
        io.setExitCode(1);
      }
    });
  weights
    .command('import')
    .description('Convert a downloaded weight file (PyTorch .pth or .safetensors) and store it in the weights cache')
    .argument('<backbone>', 'backbone id, e.g. resnet18')
    .argument('<file>', 'the weight file, e.g. resnet18-f37072fd.pth')
    .option('--source <set>', 'the weight set the file is (default: the set whose published file name it has, else the backbone\'s default set)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nEvery tensor of the file must be used and every shape must fit; otherwise nothing is stored and each problem is listed by name.')
    .action(async (backbone: string, file: string, options: { source?: string; json?: boolean }) => {
      const line = new ProgressLine(io, { enabled: !options.json });
      try {
        const { importWeightsFile } = await import('../../../models/registry');
        const result = await importWeightsFile(backbone, file, options.source, (message) => line.status({ label: message }));
        line.clear();
        const m = result.manifest;
        if (options.json) {
          io.stdout(JSON.stringify({ backbone: m.backbone, set: m.set, dir: result.dir, tensors: result.tensors, skipped: m.skipped, sha256: m.source.sha256, checksumVerified: m.source.checksumVerified, preprocessing: m.preprocessing }, null, 2) + '\n');
        } else {
          io.stdout(
            `Imported ${m.backbone} ${m.set} (${m.publisher}, ${m.variant}): ${result.tensors} tensors → ${result.dir}\n` +
              (m.skipped.length ? `Skipped by design: ${m.skipped.length} tensors (${summarise(m.skipped)})\n` : '') +
              `SHA-256 ${m.source.sha256}${m.source.checksumVerified ? ' (matches the publisher\'s prefix)' : ' (not checked: the file does not carry the publisher\'s name)'}\n` +
              `Train with it: refit train DATA --backbone ${m.backbone} --weights ${m.set}\n`,
          );
        }
      } catch (err) {
        line.clear();
        io.stderr(`refit weights import: ${err instanceof Error ? err.message : String(err)}\n`);
        io.setExitCode(1);
      }
    });
  return weights;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`expected a whole number ≥ 0, got "${value}"`);
  return n;
}

function summarise(names: string[]): string {
  const counters = names.filter((n) => n.endsWith('.num_batches_tracked')).length;
  const rest = names.filter((n) => !n.endsWith('.num_batches_tracked'));
  const heads = [...new Set(rest.map((n) => n.split('.')[0]))];
  return [counters ? `${counters} batch-norm step counters` : '', heads.length ? `${heads.join(', ')}` : ''].filter(Boolean).join('; ');
}
