import { afterEach, describe, expect, it } from 'vitest';
import { flushSync, mount, unmount } from 'svelte';
import ThumbGrid from '../../renderer/src/components/ThumbGrid.svelte';
import { ThumbnailCache } from '../../renderer/src/state/thumbs.svelte';
import { gridLayout, pagesFor, visibleRange } from '../../renderer/src/lib/virtual';
import { fakeApi, settle, target } from './fake-api';

const TOTAL = 5000;
const files = Array.from({ length: TOTAL }, (_, i) => `/data/shirts/img-${String(i).padStart(4, '0')}.png`);

function gridApi() {
  return fakeApi({
    'dataset.images': ({ className, offset, limit }) => ({
      className,
      total: TOTAL,
      images: files.slice(offset, offset + limit).map((file, i) => ({ file, hash: `h${offset + i}`, width: 28, height: 28, excluded: false })),
    }),
    'dataset.thumbnail': ({ file }) => ({ dataUrl: `data:image/png;base64,${btoa(file)}` }),
  });
}

let component: Record<string, unknown> | null = null;
afterEach(() => {
  if (component) unmount(component);
  component = null;
  document.body.innerHTML = '';
});

describe('virtual grid math', () => {
  it('covers only the visible rows plus overscan', () => {
    const layout = gridLayout(TOTAL, 960, 128, 8);
    expect(layout.columns).toBe(7);
    // Cells grow from 128 to fill the row: 7 × 130 + 6 × 8 = 958.
    expect(layout.cell).toBe(130);
    expect(layout.rowHeight).toBe(138);
    expect(layout.rows).toBe(715);
    const r = visibleRange(layout, TOTAL, 0, 560, 2);
    expect(r).toMatchObject({ firstRow: 0, lastRow: 6, start: 0, end: 49 });
    const far = visibleRange(layout, TOTAL, 138 * 100, 560, 2);
    expect(far.start).toBe(98 * 7);
    expect(far.end).toBe(107 * 7);
    expect(pagesFor(far.start, far.end, 200)).toEqual([3]);
    expect(pagesFor(190, 410, 200)).toEqual([0, 1, 2]);
  });
});

describe('ThumbGrid', () => {
  it('renders only the visible cells of 5,000 images and fetches pages and thumbnails lazily', async () => {
    const api = gridApi();
    const thumbs = new ThumbnailCache(api, 160, 6);
    const el = target();
    const excluded: [string, boolean][] = [];
    component = mount(ThumbGrid, {
      target: el,
      props: {
        api,
        thumbs,
        className: 'shirts',
        expected: TOTAL,
        onexclude: async (file: string, ex: boolean) => {
          excluded.push([file, ex]);
          return true;
        },
        fallbackWidth: 960,
        fallbackHeight: 560,
      },
    });
    await settle(12);

    const cells = () => Array.from(el.querySelectorAll<HTMLElement>('[role="listitem"]'));
    // 7 columns × (4 visible rows + overscan) — not 5,000.
    expect(cells().length).toBe(49);
    expect(api.callsOf('dataset.images')).toEqual([{ className: 'shirts', offset: 0, limit: 200 }]);
    // Thumbnails only for the visible cells, and they are shown.
    expect(api.callsOf('dataset.thumbnail').length).toBe(49);
    expect(new Set(api.callsOf('dataset.thumbnail').map((p) => p.file))).toEqual(new Set(files.slice(0, 49)));
    expect(el.querySelectorAll('img').length).toBe(49);
    expect(el.querySelector('img')!.getAttribute('alt')).toBe('img-0000.png');
    // The canvas is as tall as all the rows, so the scrollbar is honest.
    const canvas = el.querySelector<HTMLElement>('[role="list"]')!;
    expect(canvas.style.height).toBe(`${715 * 138 - 8}px`);
    expect(cells()[0].getAttribute('aria-setsize')).toBe(String(TOTAL));

    // Scroll to row 100: the page holding items 686..748 is fetched, and only those cells exist.
    const scroller = el.querySelector<HTMLElement>('[data-testid="thumb-grid"]')!;
    scroller.scrollTop = 138 * 100;
    scroller.dispatchEvent(new Event('scroll'));
    await settle(12);
    expect(api.callsOf('dataset.images').map((p) => p.offset)).toEqual([0, 600]);
    const now = cells();
    expect(now.length).toBe(63);
    expect(now[0].getAttribute('aria-posinset')).toBe(String(98 * 7 + 1));
    expect(now.at(-1)!.getAttribute('aria-posinset')).toBe(String(107 * 7));
    const wanted = api.callsOf('dataset.thumbnail').map((p) => p.file);
    expect(wanted.length).toBe(49 + 63);
    expect(wanted.slice(49).every((f) => files.indexOf(f) >= 686 && files.indexOf(f) < 749)).toBe(true);
    expect(el.querySelector(`img[alt="img-0700.png"]`)).not.toBeNull();
    expect(el.querySelector(`img[alt="img-0000.png"]`)).toBeNull();

    // Scrolling back needs no new requests: pages and thumbnails are cached.
    scroller.scrollTop = 0;
    scroller.dispatchEvent(new Event('scroll'));
    await settle(6);
    expect(api.callsOf('dataset.images').length).toBe(2);
    expect(api.callsOf('dataset.thumbnail').length).toBe(49 + 63);
  });

  it('excludes and includes an image', async () => {
    const api = gridApi();
    const el = target();
    const calls: [string, boolean][] = [];
    component = mount(ThumbGrid, {
      target: el,
      props: {
        api,
        thumbs: new ThumbnailCache(api),
        className: 'shirts',
        expected: TOTAL,
        onexclude: async (file: string, ex: boolean) => {
          calls.push([file, ex]);
          return true;
        },
      },
    });
    await settle(8);
    const exclude = el.querySelector<HTMLButtonElement>('button[aria-label="Exclude img-0003.png"]')!;
    expect(exclude.getAttribute('aria-pressed')).toBe('false');
    exclude.click();
    await settle();
    expect(calls).toEqual([[files[3], true]]);
    const include = el.querySelector<HTMLButtonElement>('button[aria-label="Include img-0003.png"]')!;
    expect(include.getAttribute('aria-pressed')).toBe('true');
    expect(include.closest('[role="listitem"]')!.textContent).toContain('Excluded');
    include.click();
    await settle();
    expect(calls[1]).toEqual([files[3], false]);
    flushSync();
    expect(el.querySelector('button[aria-label="Exclude img-0003.png"]')).not.toBeNull();
  });
});
