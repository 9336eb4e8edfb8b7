// The two IPC channels between the preload and the main process. Nothing else crosses IPC.
// Shared by preload.ts (bundled into it) and ipc.ts; no imports, so the preload stays tiny.

/** ipcRenderer.invoke(CALL_CHANNEL, {method, params}) → {ok: true, result} | {ok: false, error: {message}} */
export const CALL_CHANNEL = 'refit:call';
/** webContents.send(EVENT_CHANNEL, {event, payload}) — engine events, plus the Electron-only ones below. */
export const EVENT_CHANNEL = 'refit:event';

/** `kind`: one of main/api/errors.ts' ERROR_KINDS (a plain string here: no imports). */
export type CallReply = { ok: true; result: unknown } | { ok: false; error: { message: string; kind?: string } };
