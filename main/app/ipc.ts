// The IPC table: one ipcMain handler for the one contract. Every call is checked (sender, shape,
// method, params) before the engine service sees it, and every answer is a plain {ok, …} object —
// errors never cross IPC as thrown exceptions. The handler is total: whatever arrives gets one reply
// whose message is at most MAX_ERROR_MESSAGE_CHARS long and quotes only short excerpts of the request.
import type { IpcMain, IpcMainInvokeEvent } from 'electron';
import { methodSchemas, parseParams, requestSchema, type MethodName } from '../api/contract';
import { CALL_CHANNEL, EVENT_CHANNEL, type CallReply } from './channels';
import { clipMessage, errorText, quoteExcerpt } from '../api/excerpt';
import { errorKindOf, type ErrorKind } from '../api/errors';
import { isExtraMethod, parseExtraParams, type ExtraMethodName, type ExtraResults, type extraMethodSchemas } from '../api/electron-extras';
import { z } from 'zod';

/** The part of main/engine/service.ts that the IPC table uses. */
export interface EngineServiceLike {
  call(method: MethodName, params: unknown): Promise<unknown>;
  on(listener: (event: string, payload: unknown) => void): () => void;
}

export interface EventTarget {
  isDestroyed(): boolean;
  send(channel: string, ...args: unknown[]): void;
}

export type ExtraHandlers = {
  [M in ExtraMethodName]: (params: z.infer<(typeof extraMethodSchemas)[M]>, event: IpcMainInvokeEvent) => Promise<ExtraResults[M]>;
};

export interface IpcOptions {
  /** Whether a frame at this URL is the app's own renderer (file:// of the build, or the dev server). */
  isTrustedSender(url: string): boolean;
  /** Where engine events go (the app's windows). */
  targets(): EventTarget[];
  /** Electron-only methods (see electron-extras.ts); a method without a handler is unknown. */
  extras?: Partial<ExtraHandlers>;
  /** Told after every successful contract call (e.g. to rebuild the Recent projects menu). */
  onResult?(method: MethodName, result: unknown): void;
}

// The contract's request shape without the WebSocket's id — {method, params}, nothing else — with the
// method checked below against the contract's methods and the Electron-only ones (for a clear message).
const callShape = requestSchema.omit({ id: true }).extend({ method: z.string().min(1).max(100) }).strict();

function isContractMethod(method: string): method is MethodName {
  return Object.prototype.hasOwnProperty.call(methodSchemas, method);
}

function fail(message: string, kind?: ErrorKind): CallReply {
  return { ok: false, error: { message: clipMessage(message), ...(kind ? { kind } : {}) } };
}

/** The frame that sent an IPC message, if it still exists. */
function senderUrl(event: IpcMainInvokeEvent): string | null {
  try {
    return event.senderFrame?.url ?? null;
  } catch {
    return null; // the frame navigated away or was destroyed
  }
}

/** Sends an event to every live target on the event channel (a target that fails to take it is skipped). */
export function broadcast(targets: EventTarget[], event: string, payload: unknown): void {
  for (const target of targets) {
    try {
      if (!target.isDestroyed()) target.send(EVENT_CHANNEL, { event, payload });
    } catch {
      /* a window closing, or a payload it cannot take: the others still get it */
    }
  }
}

/**
 * Registers the one handler ('refit:call') and forwards the service's events ('refit:event').
 * Returns a function that undoes both.
 */
export function registerIpc(ipcMain: Pick<IpcMain, 'handle' | 'removeHandler'>, service: EngineServiceLike, options: IpcOptions): () => void {
  const handle = async (event: IpcMainInvokeEvent, request: unknown): Promise<CallReply> => {
    try {
      const url = senderUrl(event);
      if (url === null || !options.isTrustedSender(url)) {
        return fail(`refused: the request did not come from Refit's own window (${url === null ? 'unknown sender' : quoteExcerpt(url, 200)})`);
      }
      const shape = callShape.safeParse(request);
      if (!shape.success) {
        return fail(`invalid request: ${shape.error.issues.map((i) => `${i.path.length ? i.path.join('.') : 'request'}: ${i.message}`).join('; ')}`);
      }
      const { method, params } = shape.data;
      if (isExtraMethod(method) && options.extras?.[method]) {
        const handler = options.extras[method] as (p: unknown, e: IpcMainInvokeEvent) => Promise<unknown>;
        return { ok: true, result: await handler(parseExtraParams(method, params), event) };
      }
      if (!isContractMethod(method)) return fail(`unknown method ${quoteExcerpt(method)}`);
      const result = await service.call(method, parseParams(method, params));
      options.onResult?.(method, result);
      return { ok: true, result };
    } catch (err) {
      return fail(errorText(err), errorKindOf(err));
    }
  };
  ipcMain.handle(CALL_CHANNEL, handle);
  const unsubscribe = service.on((event, payload) => broadcast(options.targets(), event, payload));
  return () => {
    ipcMain.removeHandler(CALL_CHANNEL);
    unsubscribe();
  };
}
