// What the desktop app adds to the one contract (main/api/contract.ts), on the same two channels:
// one method for the native folder dialog and three events for the native menu. The browser host
// has none of them (it has `fs.listDir` for its own folder picker), so the renderer must treat them
// as optional: `'dialog.chooseFolder'` exists only when `window.api` is the Electron preload.
// No 'electron' import here: the renderer may import these types.
import { z } from 'zod';
import type { DatasetView } from './contract';

export const extraMethodSchemas = {
  /** Shows the native "choose folder" dialog; resolves to the chosen folders ([] when cancelled). */
  'dialog.chooseFolder': z
    .object({
      title: z.string().max(200).optional(),
      /** Several folders at once (e.g. class folders for "Add folder"). */
      multiple: z.boolean().optional(),
      /** Offer a "New folder" button (e.g. for an export destination). */
      create: z.boolean().optional(),
    })
    .strict(),
} as const;

export type ExtraMethodName = keyof typeof extraMethodSchemas;

export interface ExtraResults {
  'dialog.chooseFolder': { paths: string[] };
}

export interface ExtraEvents {
  /** A project was opened from the native menu (File → Open project… or a recent project). */
  'project.opened': DatasetView;
  /** A menu item the renderer carries out (e.g. File → Export model… shows the Export screen). */
  'menu.command': { command: 'export-model' };
  /** Something started from the native menu failed; show it like any other error. */
  'app.error': { message: string };
}

export function isExtraMethod(method: string): method is ExtraMethodName {
  return Object.prototype.hasOwnProperty.call(extraMethodSchemas, method);
}

/** Validates an extra method's params, with the same message shape as the contract's parseParams. */
export function parseExtraParams<M extends ExtraMethodName>(method: M, params: unknown): z.infer<(typeof extraMethodSchemas)[M]> {
  const parsed = extraMethodSchemas[method].safeParse(params ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : 'params'}: ${i.message}`).join('; ');
    throw new Error(`${method}: invalid request — ${issues}`);
  }
  return parsed.data;
}
