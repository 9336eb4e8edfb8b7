// The arithmetic of a virtualised grid with fixed-size cells: which rows and items are visible.

export interface GridLayout {
  columns: number;
  /** Cell side: at least the minimum, grown so the columns fill the width. */
  cell: number;
  rows: number;
  rowHeight: number;
  /** Full scrollable height. */
  height: number;
}

export interface VisibleRange {
  firstRow: number;
  lastRow: number;
  /** Item indices [start, end). */
  start: number;
  end: number;
}

export function gridLayout(total: number, width: number, minCell: number, gap: number): GridLayout {
  const columns = Math.max(1, Math.floor((width + gap) / (minCell + gap)));
  const cell = Math.max(minCell, Math.floor((width - gap * (columns - 1)) / columns));
  const rows = Math.ceil(total / columns);
  const rowHeight = cell + gap;
  return { columns, cell, rows, rowHeight, height: Math.max(0, rows * rowHeight - gap) };
}

export function visibleRange(layout: GridLayout, total: number, scrollTop: number, viewport: number, overscan = 2): VisibleRange {
  if (total === 0) return { firstRow: 0, lastRow: -1, start: 0, end: 0 };
  const firstRow = Math.max(0, Math.floor(scrollTop / layout.rowHeight) - overscan);
  const lastRow = Math.min(layout.rows - 1, Math.ceil((scrollTop + viewport) / layout.rowHeight) + overscan - 1);
  const start = firstRow * layout.columns;
  const end = Math.min(total, (lastRow + 1) * layout.columns);
  return { firstRow, lastRow, start, end: Math.max(start, end) };
}

/** Page indices needed to cover items [start, end). */
export function pagesFor(start: number, end: number, pageSize: number): number[] {
  if (end <= start) return [];
  const pages: number[] = [];
  for (let p = Math.floor(start / pageSize); p <= Math.floor((end - 1) / pageSize); p++) pages.push(p);
  return pages;
}
