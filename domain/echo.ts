/**
 * How a problem message repeats what a client sent (a value, a field name, an id): as sent, but
 * never more than MAX_ECHO_CHARS of it, so a 100,000-character id or a 1,000-character field name
 * does not come back whole in every error (a reply stays small, a log line readable). The one
 * place that bounds echoes: the ingest endpoint, the read API and the config checks use it.
 */

/** Most UTF-16 code units of a sent text repeated in a message. */
export const MAX_ECHO_CHARS = 200;

/**
 * `text` unchanged when it has at most MAX_ECHO_CHARS UTF-16 code units; else its first
 * MAX_ECHO_CHARS (one fewer when that would split a surrogate pair) followed by
 * `… (<length> characters)`, the length in UTF-16 code units as sent.
 */
export function echoText(text: string): string {
  if (text.length <= MAX_ECHO_CHARS) return text;
  const high = text.charCodeAt(MAX_ECHO_CHARS - 1);
  const cut = high >= 0xd800 && high <= 0xdbff ? MAX_ECHO_CHARS - 1 : MAX_ECHO_CHARS;
  return `${text.slice(0, cut)}… (${text.length} characters)`;
}

/**
 * A sent value as JSON for a message (`"week"`, `12`, `null`): a string is cut by `echoText`
 * inside its quotes; any other value's JSON text is cut the same way.
 */
export function echoJson(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(echoText(value));
  return echoText(JSON.stringify(value) ?? String(value));
}
