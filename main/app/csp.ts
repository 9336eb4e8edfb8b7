// Session-wide security: the Content-Security-Policy response header, no remote content (every request
// that is not the app's own is cancelled), every permission denied (but plain-text clipboard writes by
// the app's own page), no downloads but the app's own blob:/data: files (e.g. "Save results as CSV").
import type { Session } from 'electron';

/** The same policy as the renderer's <meta> tag (frame-ancestors only works as a header). */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

type Headers = Record<string, string[]>;

/** The response headers with Refit's policy replacing any Content-Security-Policy already there. */
export function withCsp(headers: Headers | undefined): Headers {
  const out: Headers = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (name.toLowerCase() !== 'content-security-policy') out[name] = value;
  }
  out['Content-Security-Policy'] = [CONTENT_SECURITY_POLICY];
  out['X-Content-Type-Options'] = ['nosniff'];
  return out;
}

export interface SessionSecurityOptions {
  /** Whether a request to this URL is the app's own (its files, or the Vite dev server in development). */
  isAllowedRequest(url: string): boolean;
  /** Whether a page at this URL is the app's own renderer. */
  isAppPage(url: string): boolean;
}

/** The one permission Refit's own page gets: writing plain text to the clipboard ("Copy" on the Export screen). */
export const ALLOWED_PERMISSIONS: ReadonlySet<string> = new Set(['clipboard-sanitized-write']);

export function installSessionSecurity(session: Session, options: SessionSecurityOptions): void {
  session.webRequest.onBeforeRequest((details, callback) => {
    callback({ cancel: !options.isAllowedRequest(details.url) });
  });
  session.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: withCsp(details.responseHeaders) });
  });
  // Camera, microphone, notifications, geolocation, clipboard reads, MIDI, HID, fullscreen…: denied.
  const allowed = (permission: string, url: string | undefined) => ALLOWED_PERMISSIONS.has(permission) && url !== undefined && options.isAppPage(url);
  session.setPermissionRequestHandler((_contents, permission, callback, details) => callback(allowed(permission, details?.requestingUrl)));
  session.setPermissionCheckHandler((_contents, permission, _origin, details) => allowed(permission, details?.requestingUrl));
  session.setDevicePermissionHandler(() => false);
  session.on('will-download', (event, item) => {
    const url = item.getURL();
    if (!url.startsWith('blob:') && !url.startsWith('data:')) event.preventDefault();
  });
}
