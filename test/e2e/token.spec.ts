// The access token in a real browser (Chromium): never in a cookie, so no other server on 127.0.0.1 ever
// receives it (browsers share a host's cookies across its ports) and two Refit servers do not overwrite each
// other; the tab keeps it in sessionStorage across reloads and reconnects; a tab without it says what to do.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from '@playwright/test';
import { expect, startRefitServer, test } from './serve-fixture';

/** The app is up and talking to its server: the sidebar shows the version that app.info returned. */
async function connected(page: Page) {
  await expect(page.locator('.sidebar .version')).toHaveText(/^v\d+\.\d+\.\d+/, { timeout: 30_000 });
  await expect(page.getByTestId('error-banner')).toHaveCount(0);
}

test('the token stays in the tab: no cookie, reloads work, other local servers get nothing, two Refit servers coexist', async ({ refit, browser }) => {
  // Another local server (a notebook, a dashboard…): it records every Cookie header it is sent.
  const cookiesSeen: (string | undefined)[] = [];
  const other = http.createServer((req, res) => {
    cookiesSeen.push(req.headers.cookie);
    res.end('<!doctype html><title>other</title>');
  });
  await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
  const otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}/`;
  const second = await startRefitServer();
  const context = await browser.newContext();
  try {
    const a = await context.newPage();
    const response = await a.goto(refit.url);
    expect(response?.status()).toBe(200);
    await connected(a);
    // The address bar holds no token (only the page's asset key); the tab's sessionStorage does; no cookie.
    expect(a.url()).toMatch(new RegExp(`^${refit.origin}/app/[A-Za-z0-9_-]{43}/$`));
    expect(a.url()).not.toContain(refit.token);
    expect(await a.evaluate(() => sessionStorage.getItem('refit.token'))).toBe(refit.token);
    expect(await a.evaluate(() => document.cookie)).toBe('');
    expect(await context.cookies()).toEqual([]);

    // A reload: the token comes from sessionStorage; the socket connects again.
    await a.reload();
    await connected(a);

    // A second Refit server in another tab of the same browser: each tab has its own token.
    const b = await context.newPage();
    await b.goto(second.server.url);
    await connected(b);
    expect(await b.evaluate(() => sessionStorage.getItem('refit.token'))).toBe(second.server.token);
    await a.reload();
    await connected(a);
    await b.reload();
    await connected(b);
    expect(await context.cookies()).toEqual([]);

    // The other local server never receives a cookie, let alone a token.
    const c = await context.newPage();
    await c.goto(otherUrl);
    await c.goto(`${otherUrl}again`);
    expect(cookiesSeen).toEqual([undefined, undefined]);

    // A new tab on the page's address alone (sessionStorage is per tab) has no token: it says what to do.
    const d = await context.newPage();
    await d.goto(a.url());
    await expect(d.getByTestId('error-banner')).toContainText(/no access token.*Open the full URL that `npm run serve` printed/, { timeout: 30_000 });
    // And a page of another origin cannot use the socket even with the token (Origin check).
    const refused = await c.evaluate(
      ([ws]) =>
        new Promise<string>((resolve) => {
          const s = new WebSocket(ws);
          s.onopen = () => resolve('open');
          s.onerror = () => resolve('refused');
        }),
      [`${refit.origin.replace('http', 'ws')}/ws?token=${refit.token}`],
    );
    expect(refused).toBe('refused');
  } finally {
    await context.close();
    await second.stop();
    await new Promise((resolve) => other.close(resolve));
  }
});
