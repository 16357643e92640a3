// Accounts and the signed-in session: register, login, logout, password change, and an access
// token that is refreshed before it expires. Refreshes of one session run one at a time: within
// this client (one shared promise) and across every client sharing its TokenStore (under the
// RefreshLock, re-reading the store once the lock is held, so a client that waited finds the
// tokens another one just got instead of presenting the spent refresh token).
import { ChatError } from './errors.js';
import type { Http, HttpRequest } from './http.js';
import type { RefreshLock } from './locks.js';
import type { TokenResponse, User } from './protocol.js';
import type { StoredSession, TokenStore } from './tokens.js';

/**
 * Why a session ended here: `logout` (this client), `session_revoked` (the server closed the
 * WebSocket with 4001: logout elsewhere, DELETE /sessions/{id}, a password change, reuse of a
 * spent refresh token), `refresh_failed` (the refresh token was refused), `elsewhere` (the shared
 * token storage was cleared or holds another user: another tab logged out or in).
 */
export type SignOutReason = 'logout' | 'session_revoked' | 'refresh_failed' | 'elsewhere';

export interface SessionOptions {
  http: Http;
  tokens: TokenStore;
  lock: RefreshLock;
  /** The lock's name: one per shared token storage. */
  lockName: string;
  /** Refresh this long before expiry (seconds); default a quarter of the lifetime, at most 60. */
  refreshMarginSec?: number | undefined;
  onSignedIn(user: User): void;
  onRefreshed(session: StoredSession): void;
  onSignedOut(reason: SignOutReason): void;
  /** A background refresh failed without ending the session (the server unreachable). */
  onRefreshError(error: ChatError): void;
}

const signedOut = () => new ChatError('signed_out', 'Not signed in');

export class SessionManager {
  user: User | null = null;
  private refreshing: Promise<StoredSession> | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private retries = 0;
  private closed = false;

  constructor(private readonly o: SessionOptions) {}

  /** Takes up a session kept in the token storage (a reload, another tab's login). */
  async resume(): Promise<User | null> {
    const stored = await this.o.tokens.get();
    if (stored && stored.user.id !== this.user?.id) {
      this.user = stored.user;
      this.o.onSignedIn(stored.user);
    }
    if (stored) this.schedule(stored);
    return this.user;
  }

  register(username: string, password: string): Promise<User> {
    return this.o.http.request<User>({
      method: 'POST',
      path: '/register',
      body: { username, password },
    });
  }

  async login(username: string, password: string): Promise<User> {
    const r = await this.o.http.request<TokenResponse>({
      method: 'POST',
      path: '/login',
      body: { username, password },
    });
    const session = toStored(r);
    await this.o.tokens.set(session);
    if (this.user && this.user.id !== r.user.id) void this.end('elsewhere', null);
    this.user = r.user;
    this.o.onSignedIn(r.user);
    this.schedule(session);
    return r.user;
  }

  /** Revokes the session on the server and forgets it here (also when the server is unreachable). */
  async logout(): Promise<void> {
    if (this.user === null) return;
    const stored = await this.o.tokens.get();
    // Only this user's session: the storage may hold another tab's newer login.
    const mine = stored !== null && stored.user.id === this.user.id ? stored : null;
    try {
      if (mine)
        await this.o.http.request({ method: 'POST', path: '/logout', token: mine.accessToken });
    } catch (error) {
      if (!(error instanceof ChatError && error.status === 401)) {
        await this.end('logout', mine?.refreshToken ?? null);
        throw error;
      }
    }
    await this.end('logout', mine?.refreshToken ?? null);
  }

  /** Every other session of the user is revoked; this one stays. */
  changePassword(currentPassword: string, newPassword: string): Promise<void> {
    return this.authed({
      method: 'POST',
      path: '/users/me/password',
      body: { currentPassword, newPassword },
    });
  }

  /** An HTTP request with the access token; after a 401 it refreshes once and retries. */
  async authed<T>(req: Omit<HttpRequest, 'token'>): Promise<T> {
    const token = await this.accessToken();
    try {
      return await this.o.http.request<T>({ ...req, token });
    } catch (error) {
      if (!(error instanceof ChatError && error.status === 401 && error.code === 'unauthorized'))
        throw error;
      const next = await this.refresh(token);
      return this.o.http.request<T>({ ...req, token: next.accessToken });
    }
  }

  /** A valid access token: the stored one, or a fresh one if it is due for a refresh. */
  async accessToken(): Promise<string> {
    const stored = await this.current();
    if (!this.due(stored)) return stored.accessToken;
    try {
      return (await this.refresh()).accessToken;
    } catch (error) {
      // The server unreachable: a token that has not expired yet may still do.
      if (
        error instanceof ChatError &&
        error.code === 'network_error' &&
        stored.expiresAt > Date.now()
      )
        return stored.accessToken;
      throw error;
    }
  }

  /**
   * Refreshes the tokens, unless another client of the same storage already has: with
   * `usedAccessToken` (a request just got 401 with it), when the stored token is another one;
   * without, when the stored token is no longer due. One refresh at a time per client and,
   * through the lock, per token storage.
   */
  refresh(usedAccessToken?: string): Promise<StoredSession> {
    this.refreshing ??= this.o.lock
      .run(this.o.lockName, async () => {
        const stored = await this.current();
        const done =
          usedAccessToken === undefined
            ? !this.due(stored)
            : stored.accessToken !== usedAccessToken;
        if (done) {
          this.adopt(stored);
          return stored;
        }
        let r: TokenResponse;
        try {
          r = await this.o.http.request<TokenResponse>({
            method: 'POST',
            path: '/token/refresh',
            body: { refreshToken: stored.refreshToken },
          });
        } catch (error) {
          if (error instanceof ChatError && error.status === 401) {
            await this.end('refresh_failed', stored.refreshToken);
            throw new ChatError('signed_out', 'The session has ended; log in again', {
              status: 401,
              cause: error,
            });
          }
          throw error;
        }
        const next = toStored(r);
        await this.o.tokens.set(next);
        this.adopt(next);
        this.o.onRefreshed(next);
        return next;
      })
      .finally(() => {
        this.refreshing = undefined;
      });
    return this.refreshing;
  }

  /**
   * The session ended (`reason`): forgets the stored tokens if they are still the ones that
   * ended (another client may have stored a new login meanwhile), and tells the client.
   */
  async end(reason: SignOutReason, refreshToken: string | null): Promise<void> {
    if (refreshToken !== null) {
      const stored = await this.o.tokens.get();
      if (stored?.refreshToken === refreshToken) await this.o.tokens.clear();
    }
    this.clearTimer();
    if (this.user === null) return;
    this.user = null;
    this.o.onSignedOut(reason);
  }

  /** The session ended on the server (close code 4001): forget its tokens, tell the client. */
  async revoked(): Promise<void> {
    const stored = await this.o.tokens.get();
    await this.end('session_revoked', stored?.refreshToken ?? null);
  }

  close(): void {
    this.closed = true;
    this.clearTimer();
  }

  /** The stored session, if it is this client's user's; else this client is signed out. */
  private async current(): Promise<StoredSession> {
    if (this.user === null) throw signedOut();
    const stored = await this.o.tokens.get();
    if (stored === null || stored.user.id !== this.user.id) {
      await this.end('elsewhere', null);
      throw signedOut();
    }
    return stored;
  }

  private marginMs(s: StoredSession): number {
    return this.o.refreshMarginSec !== undefined
      ? this.o.refreshMarginSec * 1000
      : Math.min(60_000, s.lifetimeMs / 4);
  }

  private due(s: StoredSession): boolean {
    return s.expiresAt - Date.now() <= this.marginMs(s);
  }

  private adopt(s: StoredSession): void {
    this.retries = 0;
    this.schedule(s);
  }

  /** Arms the timer that refreshes `s` before it expires. */
  private schedule(s: StoredSession): void {
    this.clearTimer();
    if (this.closed) return;
    const delay = Math.max(0, s.expiresAt - this.marginMs(s) - Date.now());
    this.timer = setTimeout(() => this.onTimer(), delay);
    (this.timer as { unref?: () => void }).unref?.();
  }

  private onTimer(): void {
    this.timer = undefined;
    if (this.user === null) return;
    this.refresh().catch((error: unknown) => {
      if (!(error instanceof ChatError) || error.code === 'signed_out') return;
      // Unreachable or refused for now: try again, sooner than the token runs out if possible.
      this.o.onRefreshError(error);
      this.retries += 1;
      const delay =
        error.retryAfter !== undefined
          ? error.retryAfter * 1000
          : Math.min(30_000, 1000 * 2 ** Math.min(this.retries, 5)) * (0.5 + Math.random() / 2);
      this.clearTimer();
      if (!this.closed) {
        this.timer = setTimeout(() => this.onTimer(), delay);
        (this.timer as { unref?: () => void }).unref?.();
      }
    });
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

function toStored(r: TokenResponse): StoredSession {
  return {
    accessToken: r.token,
    refreshToken: r.refreshToken,
    expiresAt: Date.now() + r.expiresIn * 1000,
    lifetimeMs: r.expiresIn * 1000,
    user: r.user,
  };
}
