// Classification results: the rows the Classify screen shows, their filters and their CSV.
import { toCsv } from './csv';

export interface ResultRow {
  id: number;
  /** File name (browser upload) or path (engine disk). */
  file: string;
  /** Object URL, data URL, or null while unknown. */
  thumb: string | null;
  top: { label: string; probability: number }[];
  error?: string;
}

export interface RowFilter {
  /** Top label to keep; '' for all. */
  label: string;
  lowConfidenceOnly: boolean;
  /** Rows whose best probability is below this are "low confidence". */
  threshold: number;
}

export function isLowConfidence(row: ResultRow, threshold: number): boolean {
  return !row.error && (row.top[0]?.probability ?? 0) < threshold;
}

export function filterRows(rows: readonly ResultRow[], filter: RowFilter): ResultRow[] {
  return rows.filter((row) => {
    if (filter.label && row.top[0]?.label !== filter.label) return false;
    if (filter.lowConfidenceOnly && !isLowConfidence(row, filter.threshold)) return false;
    return true;
  });
}

export function labelsOf(rows: readonly ResultRow[]): string[] {
  return [...new Set(rows.flatMap((r) => (r.top[0] ? [r.top[0].label] : [])))].sort((a, b) => a.localeCompare(b));
}

export function resultsCsv(rows: readonly ResultRow[], topK = 3): string {
  const header = ['file'];
  for (let k = 1; k <= topK; k++) header.push(`label_${k}`, `probability_${k}`);
  header.push('error');
  const body = rows.map((row) => {
    const cells: (string | number)[] = [row.file];
    for (let k = 0; k < topK; k++) {
      const t = row.top[k];
      cells.push(t?.label ?? '', t ? Number(t.probability.toFixed(6)) : '');
    }
    cells.push(row.error ?? '');
    return cells;
  });
  return toCsv(header, body);
}
