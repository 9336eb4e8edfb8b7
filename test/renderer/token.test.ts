// The browser transport's access token: taken from the address (the server's redirect puts it in the
// fragment), kept in the tab's sessionStorage for reloads and reconnects, cleared from the address bar,
// never written to a cookie; a tab without one gets a clear message instead of a silent retry loop.
import { describe, expect, it } from 'vitest';
import { ConnectionError, createApi, socketUrl, takeToken, TOKEN_STORAGE_KEY } from '../../renderer/src/api';

const T = 'A'.repeat(43);

function fakeWindow(address: { pathname?: string; search?: string; hash?: string }, stored: string | null = null) {
  const storage = new Map<string, string>(stored ? [[TOKEN_STORAGE_KEY, stored]] : []);
  const replaced: string[] = [];
  return {
    win: {
      location: { protocol: 'http:', host: '127.0.0.1:4173', pathname: '/app/KEY/', search: '', hash: '', ...address },
      history: { replaceState: (_s: unknown, _t: string, url: string) => void replaced.push(url) },
      sessionStorage: { getItem: (k: string) => storage.get(k) ?? null, setItem: (k: string, v: string) => void storage.set(k, v) },
    },
    storage,
    replaced,
  };
}

describe('the tab’s access token', () => {
  it('moves the token from the fragment into sessionStorage and clears the address', () => {
    const { win, storage, replaced } = fakeWindow({ hash: `#token=${T}` });
    expect(takeToken(win)).toBe(T);
    expect(storage.get(TOKEN_STORAGE_KEY)).toBe(T);
    expect(replaced).toEqual(['/app/KEY/']);
  });

  it('reads ?token= too, keeping the rest of the address', () => {
    const { win, storage, replaced } = fakeWindow({ search: `?a=1&token=${T}`, hash: '#b=2' });
    expect(takeToken(win)).toBe(T);
    expect(storage.get(TOKEN_STORAGE_KEY)).toBe(T);
    expect(replaced).toEqual(['/app/KEY/?a=1#b=2']);
  });

  it('after a reload (no token in the address) uses the stored one; a new token in the address replaces it', () => {
    const reload = fakeWindow({}, 'OLD'.padEnd(43, 'x'));
    expect(takeToken(reload.win)).toBe('OLD'.padEnd(43, 'x'));
    expect(reload.replaced).toEqual([]);
    const fresh = fakeWindow({ hash: `#token=${T}` }, 'OLD'.padEnd(43, 'x'));
    expect(takeToken(fresh.win)).toBe(T);
    expect(fresh.storage.get(TOKEN_STORAGE_KEY)).toBe(T);
  });

  it('works when storage is disabled (the token then lives as long as the page)', () => {
    const { win } = fakeWindow({ hash: `#token=${T}` });
    const throwing = {
      ...win,
      sessionStorage: {
        getItem: () => {
          throw new Error('SecurityError');
        },
        setItem: () => {
          throw new Error('SecurityError');
        },
      },
    };
    expect(takeToken(throwing)).toBe(T);
    expect(takeToken({ ...throwing, location: { ...win.location, hash: '' } })).toBeNull();
  });

  it('puts the token in the socket URL, encoded', () => {
    expect(socketUrl({ protocol: 'http:', host: '127.0.0.1:4173', search: '' }, 'a+b')).toBe('ws://127.0.0.1:4173/ws?token=a%2Bb');
  });

  it('createApi in a real (happy-dom) window: token from the fragment into sessionStorage, address cleaned, no cookie', () => {
    history.replaceState(null, '', `/app/KEY/#token=${T}`);
    sessionStorage.clear();
    const sockets: string[] = [];
    const OriginalWebSocket = globalThis.WebSocket;
    globalThis.WebSocket = class {
      readyState = 0;
      onopen = null;
      onmessage = null;
      onclose = null;
      onerror = null;
      constructor(url: string) {
        sockets.push(url);
      }
      send() {}
      close() {}
    } as unknown as typeof WebSocket;
    try {
      const api = createApi(window);
      expect(api.transport).toBe('websocket');
      expect(sockets).toEqual([`ws://${location.host}/ws?token=${T}`]);
      expect(sessionStorage.getItem(TOKEN_STORAGE_KEY)).toBe(T);
      expect(location.hash).toBe('');
      expect(location.href).not.toContain(T);
      expect(document.cookie).not.toContain(T);
      api.close();
    } finally {
      globalThis.WebSocket = OriginalWebSocket;
      sessionStorage.clear();
    }
  });

  it('a tab without a token: calls fail at once with a message saying which URL to open', async () => {
    history.replaceState(null, '', '/app/KEY/');
    sessionStorage.clear();
    const api = createApi(window);
    const failed = api.call('app.info', {});
    await expect(failed).rejects.toBeInstanceOf(ConnectionError);
    await expect(failed).rejects.toThrow(/no access token.*Open the full URL that `npm run serve` printed/);
  });
});
