// The preload exposes exactly two things to the page, through contextBridge (the page never sees
// ipcRenderer): `window.api`, the typed contract (RefitApi, plus the Electron-only extras), and
// `window.refitFiles.pathForFile` for folders dropped from the file manager. It runs sandboxed, so it
// is bundled to one CommonJS file whose only run-time import is 'electron'.
import { contextBridge, ipcRenderer, webUtils } from 'electron';
import type { RefitApi } from '../api/contract';
import { CALL_CHANNEL, EVENT_CHANNEL, type CallReply } from './channels';

const api: RefitApi = {
  async call(method, params) {
    if (typeof method !== 'string') throw new TypeError('api.call: the method must be a string');
    const reply = (await ipcRenderer.invoke(CALL_CHANNEL, { method, params: params ?? {} })) as CallReply;
    if (reply?.ok) return reply.result as never;
    const error = new Error(reply?.error?.message ?? `${method}: no reply from the engine`);
    if (typeof reply?.error?.kind === 'string') Object.assign(error, { kind: reply.error.kind });
    throw error;
  },
  on(event, listener) {
    if (typeof event !== 'string' || typeof listener !== 'function') throw new TypeError('api.on(event, listener)');
    const forward = (_ipcEvent: Electron.IpcRendererEvent, message: { event?: unknown; payload?: unknown }) => {
      if (message?.event === event) listener(message.payload as never);
    };
    ipcRenderer.on(EVENT_CHANNEL, forward);
    return () => {
      ipcRenderer.removeListener(EVENT_CHANNEL, forward);
    };
  },
};

const refitFiles = {
  /** The absolute path of a File from a drop or an <input type="file"> ('' when it has none). */
  pathForFile: (file: File): string => webUtils.getPathForFile(file),
};

contextBridge.exposeInMainWorld('api', api);
contextBridge.exposeInMainWorld('refitFiles', refitFiles);
