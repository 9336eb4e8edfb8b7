// Safe descriptions of untrusted values for error replies (both transports: the browser host's WebSocket and
// Electron IPC). Nothing here recurses into a value or serialises it whole: whatever arrives — any depth,
// any size, any type — is described in a bounded number of steps by a short string.

/** Longest error message a reply carries (longer ones are cut, with the original length noted). */
export const MAX_ERROR_MESSAGE_CHARS = 1000;
/** Longest excerpt of a client-supplied string quoted in an error message. */
export const MAX_EXCERPT_CHARS = 80;

/** "an array", "an object", "a string", … — the JSON type of a value, without looking inside it. */
export function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string':
      return 'a string';
    case 'number':
      return Number.isFinite(value) ? 'a number' : 'a non-finite number';
    case 'boolean':
      return 'a boolean';
    case 'undefined':
      return 'nothing';
    case 'object':
      return 'an object';
    default:
      return `a ${typeof value}`;
  }
}

/** `text` quoted, at most `max` characters of it, and its length when it was cut. Control characters are escaped. */
export function quoteExcerpt(text: string, max = MAX_EXCERPT_CHARS): string {
  const cut = text.length > max;
  // Slice first, so that the cost is bounded by max whatever the length of text.
  const head = JSON.stringify(cut ? text.slice(0, max) : text);
  return cut ? `${head.slice(0, -1)}…" (${text.length.toLocaleString('en-US')} characters)` : head;
}

/** A short, safe description of any value: a quoted excerpt of a string, the number itself, else its kind. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return quoteExcerpt(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return kindOf(value);
}

/** Cuts a message to `max` characters, saying so. */
export function clipMessage(message: string, max = MAX_ERROR_MESSAGE_CHARS): string {
  if (message.length <= max) return message;
  return `${message.slice(0, max)}… (message cut: ${message.length.toLocaleString('en-US')} characters)`;
}

/** The message of anything thrown, clipped; never throws itself (not even for a hostile getter or toString). */
export function errorText(err: unknown): string {
  try {
    if (err instanceof Error) return clipMessage(String(err.message));
    if (typeof err === 'string') return clipMessage(err);
    return `unexpected failure (${kindOf(err)})`;
  } catch {
    return 'unexpected failure';
  }
}
