// One contract, two transports: Electron's preload (`window.api`) or a WebSocket to the browser host.
import type { EventName, Events, MethodName, Params, RefitApi, Results } from './types';

export type ConnectionState = 'connecting' | 'open' | 'closed';

/** The contract plus what the UI needs to know about the line itself. */
export interface ApiClient extends RefitApi {
  readonly transport: 'electron' | 'websocket';
  /** Connection changes (Electron is always open). Returns an unsubscribe function. */
  onConnection(listener: (state: ConnectionState) => void): () => void;
  close(): void;
}

/** What the Electron preload adds besides the contract (all optional: absent in a browser). */
export interface RefitFiles {
  /** Absolute path of a dropped File (Electron's webUtils.getPathForFile; '' when it has none). */
  pathForFile?(file: File): string;
}

declare global {
  interface Window {
    api?: RefitApi;
    refitFiles?: RefitFiles;
  }
}

/** Thrown for calls that could not reach the engine (socket closed or never opened). */
export class ConnectionError extends Error {
  override name = 'ConnectionError';
}

/** The minimal WebSocket surface the client uses (the DOM WebSocket and the `ws` package both fit). */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code?: number; reason?: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export interface SocketApiOptions {
  /** Opens a socket; default: the browser's WebSocket. */
  createSocket?: (url: string) => SocketLike;
  /** Milliseconds to wait before each reconnection attempt (the last one repeats). */
  reconnectDelays?: number[];
}

const OPEN = 1;
type Listener = (payload: never) => void;

interface Pending {
  method: MethodName;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

/** Where the tab keeps its access token: sessionStorage is per tab, per origin and port, and never sent anywhere. */
export const TOKEN_STORAGE_KEY = 'refit.token';

type TokenWindow = {
  location: Pick<Location, 'pathname' | 'search' | 'hash'>;
  history?: Pick<History, 'replaceState'>;
  sessionStorage?: Pick<Storage, 'getItem' | 'setItem'>;
};

/**
 * This tab's access token for the browser host. The printed URL brings it in the address (the server
 * redirects `/?token=T` to `/app/<asset key>/#token=T`; `?token=T` is read too); it is moved into
 * sessionStorage — there for reloads and reconnects, gone with the tab, never in a cookie (cookies are
 * shared by every port of a host) — and cleared from the address bar, bookmarks and screenshots.
 */
export function takeToken(win: TokenWindow): string | null {
  const { pathname, search, hash } = win.location;
  const query = new URLSearchParams(search);
  const fragment = new URLSearchParams(hash.startsWith('#') ? hash.slice(1) : hash);
  const fromAddress = fragment.get('token') || query.get('token');
  let stored: string | null = null;
  try {
    if (fromAddress) win.sessionStorage?.setItem(TOKEN_STORAGE_KEY, fromAddress);
    else stored = win.sessionStorage?.getItem(TOKEN_STORAGE_KEY) ?? null;
  } catch {
    /* storage disabled: the token lives as long as the page */
  }
  if (fromAddress && win.history) {
    query.delete('token');
    fragment.delete('token');
    const q = query.toString();
    const f = fragment.toString();
    try {
      win.history.replaceState(null, '', `${pathname}${q ? `?${q}` : ''}${f ? `#${f}` : ''}`);
    } catch {
      /* not allowed here: harmless */
    }
  }
  return fromAddress || stored;
}

/** `ws(s)://<host>/ws?token=…`, with `token` (default: the one in the page's query, if any). */
export function socketUrl(loc: Pick<Location, 'protocol' | 'host' | 'search'>, token: string | null = new URLSearchParams(loc.search).get('token')): string {
  const proto = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${loc.host}/ws${token ? `?token=${encodeURIComponent(token)}` : ''}`;
}

function decode(data: unknown): string | null {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return new TextDecoder().decode(data);
  if (ArrayBuffer.isView(data)) return new TextDecoder().decode(data as Uint8Array);
  return null;
}

/**
 * The contract over a WebSocket: requests carry an id and are matched to responses in a pending
 * map; messages without an id are events. When the socket closes, every waiting call fails with a
 * ConnectionError and the client reconnects on its own; calls made while it (re)connects wait for it.
 */
export function createSocketApi(url: string, options: SocketApiOptions = {}): ApiClient {
  const createSocket = options.createSocket ?? ((u: string) => new WebSocket(u) as unknown as SocketLike);
  const delays = options.reconnectDelays?.length ? options.reconnectDelays : [500, 1000, 2000, 5000, 10_000];
  const pending = new Map<number, Pending>();
  const outbox: string[] = [];
  const listeners = new Map<string, Set<Listener>>();
  const connectionListeners = new Set<(state: ConnectionState) => void>();
  let nextId = 1;
  let socket: SocketLike | null = null;
  let state: ConnectionState = 'connecting';
  let attempt = 0;
  let closedByUser = false;
  let timer: ReturnType<typeof setTimeout> | null = null;

  function setState(next: ConnectionState) {
    if (next === state) return;
    state = next;
    for (const listener of [...connectionListeners]) listener(next);
  }

  function failAll(reason: string) {
    const error = new ConnectionError(reason);
    for (const [id, p] of pending) {
      pending.delete(id);
      p.reject(error);
    }
    outbox.length = 0;
  }

  function dispatch(event: string, payload: unknown) {
    for (const listener of [...(listeners.get(event) ?? [])]) {
      try {
        listener(payload as never);
      } catch (err) {
        console.error(`refit: a listener of "${event}" failed`, err);
      }
    }
  }

  function onMessage(raw: unknown) {
    const text = decode(raw);
    if (text === null) return;
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(text);
    } catch {
      console.error('refit: ignored a message that is not JSON', text.slice(0, 200));
      return;
    }
    if (typeof msg.id === 'number') {
      const p = pending.get(msg.id);
      if (!p) return;
      pending.delete(msg.id);
      if (msg.ok === true) p.resolve(msg.result);
      else {
        const error = msg.error as { message?: unknown; kind?: unknown } | undefined;
        const err = new Error(typeof error?.message === 'string' ? error.message : `${p.method} failed`);
        // The engine's kind of failure (main/api/errors.ts): the screens' advice depends on it.
        if (typeof error?.kind === 'string') Object.assign(err, { kind: error.kind });
        p.reject(err);
      }
    } else if (typeof msg.event === 'string') {
      dispatch(msg.event, msg.payload);
    }
  }

  function connect() {
    timer = null;
    setState('connecting');
    let s: SocketLike;
    try {
      s = createSocket(url);
    } catch (err) {
      failAll(`Could not connect to the Refit server: ${err instanceof Error ? err.message : String(err)}`);
      scheduleReconnect();
      return;
    }
    socket = s;
    s.onopen = () => {
      if (socket !== s) return;
      attempt = 0;
      setState('open');
      for (const data of outbox.splice(0)) s.send(data);
    };
    s.onmessage = (ev) => {
      if (socket === s) onMessage(ev.data);
    };
    s.onerror = () => {
      /* a close event follows */
    };
    s.onclose = (ev) => {
      if (socket !== s) return;
      socket = null;
      const why = ev?.reason ? ` (${ev.reason})` : '';
      failAll(`Lost the connection to the Refit server${why}. It reconnects by itself; if it does not, check that the server is still running and open the URL it printed (the token changes at every start).`);
      if (closedByUser) {
        setState('closed');
        return;
      }
      setState('closed');
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    if (closedByUser || timer) return;
    const delay = delays[Math.min(attempt, delays.length - 1)];
    attempt += 1;
    timer = setTimeout(connect, delay);
  }

  connect();

  return {
    transport: 'websocket',
    call<M extends MethodName>(method: M, params: Params<M>): Promise<Results[M]> {
      if (closedByUser) return Promise.reject(new ConnectionError('The connection to the Refit server was closed.'));
      const id = nextId++;
      const data = JSON.stringify({ id, method, params: params ?? {} });
      return new Promise<Results[M]>((resolve, reject) => {
        pending.set(id, { method, resolve: resolve as (v: unknown) => void, reject });
        if (socket && socket.readyState === OPEN && state === 'open') socket.send(data);
        else {
          outbox.push(data);
          if (state === 'closed') {
            // Reconnect now rather than at the next scheduled attempt.
            if (timer) clearTimeout(timer);
            connect();
          }
        }
      });
    },
    on<E extends EventName>(event: E, listener: (payload: Events[E]) => void): () => void {
      let set = listeners.get(event);
      if (!set) listeners.set(event, (set = new Set()));
      set.add(listener as Listener);
      return () => set.delete(listener as Listener);
    },
    onConnection(listener) {
      connectionListeners.add(listener);
      return () => connectionListeners.delete(listener);
    },
    close() {
      closedByUser = true;
      if (timer) clearTimeout(timer);
      timer = null;
      const s = socket;
      socket = null;
      failAll('The connection to the Refit server was closed.');
      setState('closed');
      s?.close();
    },
  };
}

/** Wraps Electron's preload contract. */
export function electronApi(api: RefitApi): ApiClient {
  return {
    transport: 'electron',
    call: (method, params) => api.call(method, params),
    on: (event, listener) => api.on(event, listener),
    onConnection: () => () => {},
    close: () => {},
  };
}

/** A client for a tab that has no access token: every call says how to get one. */
function tokenlessApi(): ApiClient {
  const error = () =>
    new ConnectionError('This tab has no access token for the Refit server. Open the full URL that `npm run serve` printed (with ?token=…); the token changes at every start.');
  return {
    transport: 'websocket',
    call: () => Promise.reject(error()),
    on: () => () => {},
    onConnection: () => () => {},
    close: () => {},
  };
}

/** window.api in Electron, else a WebSocket to the page's own origin with this tab's token. */
export function createApi(win: Window = window): ApiClient {
  if (win.api && typeof win.api.call === 'function' && typeof win.api.on === 'function') return electronApi(win.api);
  const token = takeToken(win);
  if (!token) return tokenlessApi();
  return createSocketApi(socketUrl(win.location, token));
}
