// Where a signed-in session's tokens live. Every client of one session (the tabs of a browser,
// say) must share one TokenStore: after a refresh the others read the new tokens from it instead
// of refreshing with the spent one.
import type { User } from './protocol.js';

export interface StoredSession {
  accessToken: string;
  refreshToken: string;
  /** When the access token expires, in ms since the epoch (by this device's clock). */
  expiresAt: number;
  /** Its lifetime when issued, in ms (`expiresIn`). */
  lifetimeMs: number;
  user: User;
}

export interface TokenStore {
  get(): StoredSession | null | Promise<StoredSession | null>;
  set(session: StoredSession): void | Promise<void>;
  clear(): void | Promise<void>;
}

/** Kept in memory: for one process, or for tests (two clients given one are two "tabs"). */
export function memoryTokenStore(initial: StoredSession | null = null): TokenStore {
  let value = initial;
  return {
    get: () => value,
    set: (session) => {
      value = session;
    },
    clear: () => {
      value = null;
    },
  };
}

/** The part of the Web Storage API used (localStorage, sessionStorage). */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/**
 * In Web Storage, shared by the tabs of an origin: `localStorage` keeps the session across
 * reloads and tabs; `sessionStorage` keeps it per tab. Anything that runs script in the page can
 * read it, so a cross-site-scripting flaw exposes the refresh token: see the README.
 */
export function webStorageTokenStore(
  storage: StorageLike,
  key = 'chat-client.session',
): TokenStore {
  return {
    get() {
      const text = storage.getItem(key);
      if (text === null) return null;
      try {
        return JSON.parse(text) as StoredSession;
      } catch {
        return null;
      }
    },
    set: (session) => storage.setItem(key, JSON.stringify(session)),
    clear: () => storage.removeItem(key),
  };
}
