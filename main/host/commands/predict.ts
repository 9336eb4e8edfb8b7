// `refit predict <model-folder> <files or folders…>`: top-k labels per image from an exported model.
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { positiveInt, startBackend } from '../cli-common';
import type { ClassifyRow } from '../../api/contract';
import { ProgressLine } from '../progress-line';
import { EXIT_INTERRUPTED, InterruptedError, processIO, withInterrupt, type CommandIO } from './io';

interface PredictCliOptions {
  top: number;
  json?: boolean;
  csv?: string;
  batchSize: number;
}

/** One CSV field, quoted when needed (RFC 4180: commas, quotes, line breaks; quotes doubled). */
export function csvField(value: string | number): string {
  const text = String(value);
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export const CSV_HEADER = 'file,rank,label,probability,error';

/** Long format: one row per (file, rank); a file that failed has one row with only file and error. */
export function csvRows(result: ClassifyRow): string {
  const row = (cells: (string | number)[]) => cells.map(csvField).join(',') + '\n';
  if (result.error !== undefined) return row([result.file, '', '', '', result.error]);
  return result.top.map((t, i) => row([result.file, i + 1, t.label, t.probability, ''])).join('');
}

/** A table row: "label  92.1%" per rank in fixed-width columns, then the file (variable width, last). */
function tableRow(result: ClassifyRow, labelWidth: number): string {
  if (result.error !== undefined) return `error: ${result.error}\n`;
  const ranks = result.top.map((t) => `${t.label.padEnd(labelWidth)} ${(t.probability * 100).toFixed(1).padStart(5)}%`);
  return `${ranks.join('   ')}   ${result.file}\n`;
}

function tableHeader(k: number, labelWidth: number): string {
  const cols = Array.from({ length: k }, (_, i) => `#${i + 1}`.padEnd(labelWidth + 7));
  return `${cols.join('   ')}   file\n`;
}

class CsvWriter {
  private chain: Promise<unknown> = Promise.resolve();
  private constructor(
    private readonly file: string,
    private readonly handle: FileHandle,
  ) {}

  static async open(file: string): Promise<CsvWriter> {
    try {
      const writer = new CsvWriter(file, await open(file, 'w'));
      writer.write(CSV_HEADER + '\n');
      return writer;
    } catch (err) {
      throw new Error(`Cannot write CSV file ${file}: ${(err as Error).message}`);
    }
  }

  write(text: string): void {
    this.chain = this.chain.then(() => this.handle.write(text));
  }

  async close(): Promise<void> {
    try {
      await this.chain;
    } catch (err) {
      throw new Error(`Cannot write CSV file ${this.file}: ${(err as Error).message}`);
    } finally {
      await this.handle.close();
    }
  }
}

interface PredictOutcome {
  predicted: number;
  failed: number;
  interrupted: boolean;
}

async function runPredict(modelDir: string, inputs: string[], options: PredictCliOptions, io: CommandIO, signal: AbortSignal, prepareTfjs: () => Promise<unknown>): Promise<PredictOutcome> {
  const { loadExportedModel, predictFiles } = await import('../../engine/predict');
  // model.onnx serves prediction without TF.js; TF.js (and its backend) start only for a folder without it.
  const model = await loadExportedModel(modelDir, { prepareTfjs });
  const outcome: PredictOutcome = { predicted: 0, failed: 0, interrupted: false };
  let csv: CsvWriter | undefined;
  try {
    csv = options.csv ? await CsvWriter.open(path.resolve(options.csv)) : undefined;
    const k = Math.min(options.top, model.labels.length);
    const labelWidth = Math.min(24, Math.max(...model.labels.map((l) => l.length)));
    const line = new ProgressLine(io, { enabled: !options.json });
    // The total is known once the inputs are listed (predictions stream before that, counted alone).
    let setTotal: (files: number) => void = () => undefined;
    const total = new Promise<number>((resolve) => (setTotal = resolve));
    const showProgress = line.counter('predicting', () => total);
    let count = 0;
    io.stdout(options.json ? '[' : tableHeader(k, labelWidth));
    showProgress(0);
    try {
      await predictFiles(model, inputs, {
        topK: k,
        batchSize: options.batchSize,
        signal,
        onTotal: setTotal,
        onResult: (result) => {
          line.clear();
          if (options.json) io.stdout(`${count === 0 ? '\n' : ',\n'}  ${JSON.stringify(result)}`);
          else io.stdout(tableRow(result, labelWidth));
          csv?.write(csvRows(result));
          count++;
          if (result.error !== undefined) outcome.failed++;
          else outcome.predicted++;
          showProgress(count);
        },
      });
    } catch (err) {
      if (!(err instanceof InterruptedError)) throw err;
      outcome.interrupted = true;
    } finally {
      line.clear();
      if (options.json) io.stdout(count === 0 ? ']\n' : '\n]\n'); // valid JSON even when interrupted
    }
  } finally {
    await csv?.close();
    model.dispose();
  }
  return outcome;
}

export function registerPredict(program: Command, io: CommandIO = processIO): Command {
  return program
    .command('predict')
    .description('Classify images with an exported Refit model: top labels with probabilities per image')
    .argument('<model-folder>', 'a folder written by `refit export` (model.json, shards, refit.json)')
    .argument('<paths...>', 'image files or folders (searched recursively)')
    .option('--top <k>', 'labels per image', positiveInt, 3)
    .option('--json', 'print one JSON array: [{file, top: [{label, probability}], error?}]')
    .option('--csv <file>', 'also write a CSV file with the columns file,rank,label,probability,error: one row per label (rank 1..k); an image that failed has one row with only file and error')
    .option('--batch-size <n>', 'images per forward pass', positiveInt, 8)
    .addHelpText('after', '\nA table is printed by default, one row per image as it is classified; an image that cannot be read gives an error row, not a failure.\nExit code 1 when the model folder is unusable or no image could be classified; 130 when interrupted.')
    .action(async (modelDir: string, inputs: string[], options: PredictCliOptions, command: Command) => {
      const outcome = await withInterrupt((signal) => runPredict(modelDir, inputs, options, io, signal, () => startBackend(command)));
      if (outcome.interrupted) {
        io.stderr(`Interrupted after ${outcome.predicted + outcome.failed} image(s).\n`);
        io.setExitCode(EXIT_INTERRUPTED);
      } else if (outcome.predicted + outcome.failed === 0) {
        io.stderr(`No images found in: ${inputs.join(', ')}\n`);
        io.setExitCode(1);
      } else if (outcome.predicted === 0) {
        io.stderr(`None of the ${outcome.failed} image(s) could be classified.\n`);
        io.setExitCode(1);
      } else if (outcome.failed > 0 && !options.json) {
        io.stderr(`${outcome.failed} of ${outcome.predicted + outcome.failed} image(s) could not be read (see the error rows).\n`);
      }
    });
}
