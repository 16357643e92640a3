// Text that comes in must be well-formed Unicode. JSON can carry a lone UTF-16 surrogate as a
// `\uD800` escape: JavaScript keeps it in the parsed string, but it cannot be encoded as UTF-8,
// so a store writes it as U+FFFD and the text changes between live delivery and history (and
// a password of lone surrogates would match other ones). Raw bytes that are not UTF-8 end up as
// U+FFFD when decoded, with the same effect. Both are refused where text comes in.
import { isUtf8 } from 'node:buffer';

/** The text of a refusal, after the name of the offending field. */
export const NOT_WELL_FORMED = 'must be well-formed Unicode text (no lone UTF-16 surrogates)';

/**
 * Where `value` (parsed JSON) holds a string, or a property name, that is not well-formed
 * Unicode: a path such as `content` or `members/2` (`""` for the value itself); undefined when
 * every string is well-formed. Iterative, so any nesting depth JSON.parse accepts is safe.
 *
 * Call it only when the raw JSON text contains a `\u` escape: parsing UTF-8 text without one
 * cannot produce a lone surrogate.
 */
export function malformedTextAt(value: unknown): string | undefined {
  const stack: Array<[unknown, string]> = [[value, '']];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      if (!v.isWellFormed()) return path;
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], join(path, String(i))]);
    } else if (typeof v === 'object' && v !== null) {
      const keys = Object.keys(v);
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i]!;
        if (!key.isWellFormed()) return join(path, '(a property name)');
        stack.push([(v as Record<string, unknown>)[key], join(path, key)]);
      }
    }
  }
  return undefined;
}

const join = (path: string, part: string): string => (path === '' ? part : `${path}/${part}`);

/** A run of percent-escapes, e.g. `%F0%9F%98%80`. */
const ESCAPES = /(?:%[0-9A-Fa-f]{2})+/g;

/**
 * Whether every run of percent-escapes in a URL (path and query) decodes to UTF-8: `%ED%A0%80`
 * (a surrogate) or `%FF` would otherwise be decoded into replacement characters or kept as
 * they are. A `%` not followed by two hex digits is not an escape and is left alone.
 */
export function percentEscapesAreUtf8(url: string): boolean {
  if (!url.includes('%')) return true;
  for (const [run] of url.matchAll(ESCAPES)) {
    const bytes = Buffer.from(run.replaceAll('%', ''), 'hex');
    if (!isUtf8(bytes)) return false;
  }
  return true;
}
