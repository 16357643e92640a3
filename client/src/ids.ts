import { runtimeGlobal } from './runtime.js';

// Message ids are decimal strings of up to 16 digits (more than a double holds exactly):
// compare them by length, then as text.

/** Negative, zero or positive as `a` is older than, the same as or newer than `b`. */
export function compareIds(a: string, b: string): number {
  const x = a.replace(/^0+(?=\d)/, '');
  const y = b.replace(/^0+(?=\d)/, '');
  if (x.length !== y.length) return x.length - y.length;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The newer of two ids; null counts as older than any id. */
export function maxId(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return compareIds(a, b) >= 0 ? a : b;
}

/** A unique `clientId`: a random UUID where the runtime has one. */
export function newClientId(): string {
  const c = runtimeGlobal<{ randomUUID?: () => string }>('crypto');
  if (typeof c?.randomUUID === 'function') return c.randomUUID();
  return `c-${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
}
