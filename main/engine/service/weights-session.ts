// The app's ImageNet weights: what each backbone has, downloads (one per backbone at a time, with
// progress events and cancel) and imports of a file on the engine's disk. The same engine code as
// `refit weights get|import`.
import type { Events, Params, Results, StoredWeightSet, WeightSetView } from '../../api/contract';
import { RefitError } from '../../api/errors';
import { listBackboneSpecs } from '../../../models/catalog';
import type { ImportResult } from '../../../models/weights/load';
import { readStoredManifest, weightSetDir } from '../../../models/weights/store';
import { DownloadCancelledError, downloadableSet, downloadWeightSet, type DownloadOptions } from '../weights-download';

/** One row per backbone × weight set: the catalogue's facts and whether (and where) it is on this machine. */
export interface WeightSetRow extends Omit<WeightSetView, 'bytes'> {
  /** The published file's size in MiB, when the publisher states it. */
  sizeMiB: number | null;
  checksum: { algorithm: string; value: string } | null;
  /** The network input mapping the set needs (Refit's Preprocessing). */
  preprocessing: unknown;
}

/** Every backbone × weight set (the app's weights.list and `refit weights list`). */
export function weightSetRows(): WeightSetRow[] {
  return listBackboneSpecs().flatMap((spec) =>
    spec.weightSets.map((s) => {
      const stored = s.delivery === 'file' ? readStoredManifest(spec.id, s.id) : undefined;
      return {
        backbone: spec.id,
        set: s.id,
        default: s.default === true,
        publisher: s.publisher,
        delivery: s.delivery,
        variant: s.variant,
        top1: s.top1,
        sizeMiB: s.sizeMiB ?? null,
        licence: s.licence,
        fileName: s.fileName,
        url: s.url ?? null,
        checksum: s.checksum ?? null,
        preprocessing: s.effective,
        present: s.delivery === 'bundled' || !!stored,
        where: s.delivery === 'bundled' ? `bundled with Refit (${s.fileName})` : stored ? weightSetDir(spec.id, s.id) : null,
      };
    }),
  );
}

export function listWeightSets(): WeightSetView[] {
  return weightSetRows().map(({ sizeMiB, checksum: _checksum, preprocessing: _preprocessing, ...view }) => ({
    ...view,
    bytes: sizeMiB ? Math.round(sizeMiB * 2 ** 20) : null,
  }));
}

function stored(result: ImportResult, verified: string): StoredWeightSet {
  const m = result.manifest;
  return { backbone: m.backbone, set: m.set, publisher: m.publisher, tensors: result.tensors, dir: result.dir, verified };
}

export class WeightsSession {
  private readonly downloads = new Map<string, AbortController>();

  constructor(
    private readonly onProgress: (progress: Events['weights.progress']) => void,
    /** Download options for tests (a base URL of a local server); never a fallback host. */
    private readonly downloadOptions: Pick<DownloadOptions, 'baseUrl' | 'retries' | 'retryDelayMs'> = {},
  ) {}

  list(): WeightSetView[] {
    return listWeightSets();
  }

  async get(params: Params<'weights.get'>): Promise<Results['weights.get']> {
    const entry = downloadableSet(params.backbone, params.source);
    if (this.downloads.has(params.backbone)) throw new RefitError('busy', `${params.backbone}'s weights are already downloading; wait for them or cancel`);
    const controller = new AbortController();
    this.downloads.set(params.backbone, controller);
    try {
      const result = await downloadWeightSet(params.backbone, entry, {
        ...this.downloadOptions,
        signal: controller.signal,
        onProgress: (p) =>
          this.onProgress({
            backbone: params.backbone,
            set: entry.id,
            phase: p.phase,
            bytes: p.bytes,
            total: p.total ?? null,
            bytesPerSecond: p.bytesPerSecond,
            etaSeconds: p.etaSeconds ?? null,
            attempt: p.attempt,
          }),
      });
      return stored(result, result.verified);
    } catch (err) {
      if (err instanceof DownloadCancelledError) throw new Error(`Download of ${params.backbone}'s weights cancelled; ${err.message.replace(/^download cancelled; /, '')}`);
      throw err;
    } finally {
      this.downloads.delete(params.backbone);
    }
  }

  cancel(params: Params<'weights.cancel'>): Results['weights.cancel'] {
    const controller = this.downloads.get(params.backbone);
    controller?.abort();
    return { cancelled: !!controller };
  }

  async importFile(params: Params<'weights.import'>): Promise<Results['weights.import']> {
    const { importWeightsFile } = await import('../../../models/registry');
    const result = await importWeightsFile(params.backbone, params.file, params.source);
    const s = result.manifest.source;
    return stored(result, s.checksumVerified ? `SHA-256 ${s.sha256.slice(0, 16)}… matches the publisher's prefix` : 'every tensor used and every shape fits (the file does not carry the publisher\'s name, so its checksum was not compared)');
  }

  /** Stops every download (the app is closing); their partial files stay for the next try. */
  close(): void {
    for (const controller of this.downloads.values()) controller.abort();
  }
}
