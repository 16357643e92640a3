// Accounts and sessions: register, login, refresh with rotation and reuse detection, logout,
// password change, session listing and revocation, WebSocket tickets. Every revocation is
// published on the bus so that open WebSockets of the session close at once, on every node.
import { AppError } from '../errors.js';
import type { Bus } from '../bus/bus.js';
import {
  StorageUnavailableError,
  UsernameTakenError,
  type Session,
  type Store,
  type User,
  type UserRecord,
} from '../storage/store.js';
import { isCommonPassword, type Passwords } from './passwords.js';
import { hashToken, randomToken, type AccessTokens } from './tokens.js';
import type { LoginSource, LoginThrottle } from './login-throttle.js';

/** How far `lastUsedAt` may lag behind the real last use. */
const TOUCH_INTERVAL_MS = 60_000;
/** At most one log line per this interval for failing `lastUsedAt` updates. */
const TOUCH_FAILURE_LOG_MS = 10_000;

export interface LoginResult {
  token: string;
  tokenType: 'Bearer';
  expiresIn: number;
  refreshToken: string;
  user: User;
}

/** Who a request or connection acts for. */
export interface AuthContext {
  user: User;
  session: Session;
}

export interface AccountsOptions {
  store: Store;
  bus: Bus;
  passwords: Passwords;
  tokens: AccessTokens;
  /** Failed logins per account and source, with growing delays (login-throttle.ts). */
  loginThrottle: LoginThrottle;
  refreshTtlSeconds: number;
  ticketTtlSeconds: number;
  now?: () => Date;
  /** Where a skipped `lastUsedAt` update is reported. */
  log?: { warn(obj: object, msg: string): void };
}

/**
 * Where security events are logged: the request's logger, so that each line carries its request
 * id. Lines name users and sessions by id, never a credential.
 */
export interface AuditLog {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
}

/** Why sessions were revoked, in the log. */
type RevokeReason = 'logout' | 'revoked' | 'password_changed' | 'refresh_token_reused';

const publicUser = (u: User): User => ({ id: u.id, username: u.username, createdAt: u.createdAt });

export class Accounts {
  private readonly now: () => Date;
  private touchFailures = 0;
  private touchFailureLoggedAt = 0;

  constructor(private readonly o: AccountsOptions) {
    this.now = o.now ?? (() => new Date());
  }

  async register(username: string, password: string): Promise<User> {
    if (isCommonPassword(password)) throw new AppError('weak_password');
    if (await this.o.store.findUserByName(username)) throw new AppError('username_taken');
    const passwordHash = await this.o.passwords.hash(password);
    try {
      return await this.o.store.createUser(username, passwordHash);
    } catch (error) {
      if (error instanceof UsernameTakenError) throw new AppError('username_taken');
      throw unavailableIfStorage(error);
    }
  }

  /**
   * Same answer, and the same argon2 work, for an unknown user and a wrong password. A throttled
   * attempt (429) is refused before any password work. Besides the tokens, the device cookie
   * that marks the client as a known source of the account next time.
   */
  async login(
    username: string,
    password: string,
    userAgent: string | null,
    from: LoginSource,
    log?: AuditLog,
  ): Promise<{ result: LoginResult; deviceCookie: string }> {
    const check = await this.o.loginThrottle.check(username, from);
    if (!check.ok) {
      log?.warn(
        {
          event: 'login_throttled',
          username: username.slice(0, 64),
          knownDevice: from.device !== undefined,
          retryAfterSeconds: check.retryAfterSeconds,
          limit: check.limit,
        },
        'login throttled',
      );
      throw rateLimited(check.retryAfterSeconds, check.limit);
    }
    let user: UserRecord | undefined;
    let ok: boolean;
    try {
      user = await this.o.store.findUserByName(username);
      ok = await this.o.passwords.verify(user?.passwordHash, password);
    } catch (error) {
      await this.o.loginThrottle.undecided(check.pass).catch(() => {});
      throw error;
    }
    // A failure was counted when the attempt started.
    if (!user || !ok) throw new AppError('invalid_credentials');
    const deviceCookie = await this.o.loginThrottle.succeeded(check.pass);
    const refreshToken = randomToken();
    // A login stores its session and refresh token (what refresh, listing and revocation work
    // on, on every node): when storage cannot take writes it is refused with 503, not issued.
    const session = await this.o.store
      .createSession({
        userId: user.id,
        userAgent,
        refreshTokenHash: hashToken(refreshToken),
        expiresAt: this.refreshExpiry(),
      })
      .catch((error: unknown) => {
        throw unavailableIfStorage(error);
      });
    return { result: await this.tokensFor(publicUser(user), session, refreshToken), deviceCookie };
  }

  /** Rotates the refresh token (a use of the session); a spent one revokes the whole session. */
  async refresh(refreshToken: string, log?: AuditLog): Promise<LoginResult> {
    const next = randomToken();
    const result = await this.o.store
      .rotateRefreshToken(hashToken(refreshToken), hashToken(next), this.refreshExpiry())
      .catch((error: unknown) => {
        throw unavailableIfStorage(error);
      });
    if (result.kind === 'reused') {
      log?.warn(
        { event: 'refresh_token_reused', sessionId: result.sessionId },
        'refresh token reused: session revoked',
      );
      await this.announceRevoked([result.sessionId], 'refresh_token_reused', log);
    }
    if (result.kind !== 'rotated') throw new AppError('invalid_refresh_token');
    const user = await this.o.store.findUserById(result.session.userId);
    if (!user) throw new AppError('invalid_refresh_token');
    // A refresh authenticates with one of the session's tokens: it is a use (lastUsedAt).
    await this.touch(result.session.id, this.now());
    return this.tokensFor(publicUser(user), result.session, next);
  }

  /** Checks an access token and that its session is live; records the use. */
  async authenticate(token: string): Promise<AuthContext> {
    const claims = await this.o.tokens.verify(token);
    if (!claims) throw new AppError('unauthorized', 'The access token is invalid or expired');
    return this.contextFor(claims.sessionId, claims.userId);
  }

  async logout(sessionId: string, log?: AuditLog, reason: RevokeReason = 'logout'): Promise<void> {
    const revoked = await this.o.store.revokeSession(sessionId).catch((error: unknown) => {
      throw unavailableIfStorage(error);
    });
    if (revoked) await this.announceRevoked([sessionId], reason, log);
  }

  async changePassword(
    ctx: AuthContext,
    currentPassword: string,
    newPassword: string,
    log?: AuditLog,
  ): Promise<void> {
    const user = await this.o.store.findUserById(ctx.user.id);
    if (!user || !(await this.o.passwords.verify(user.passwordHash, currentPassword))) {
      throw new AppError('wrong_current_password');
    }
    if (isCommonPassword(newPassword)) throw new AppError('weak_password');
    try {
      await this.o.store.setPasswordHash(user.id, await this.o.passwords.hash(newPassword));
      log?.info({ event: 'password_changed', userId: user.id }, 'password changed');
      await this.announceRevoked(
        await this.o.store.revokeOtherSessions(user.id, ctx.session.id),
        'password_changed',
        log,
      );
    } catch (error) {
      throw unavailableIfStorage(error);
    }
  }

  async sessions(
    ctx: AuthContext,
  ): Promise<Array<Omit<Session, 'userId' | 'expiresAt' | 'revokedAt'> & { current: boolean }>> {
    const sessions = await this.o.store.listSessions(ctx.user.id);
    return sessions.map((s) => ({
      id: s.id,
      createdAt: s.createdAt,
      lastUsedAt: s.lastUsedAt,
      userAgent: s.userAgent,
      current: s.id === ctx.session.id,
    }));
  }

  /** Revokes one of the caller's own sessions; someone else's is "not found". */
  async revokeSession(ctx: AuthContext, sessionId: string, log?: AuditLog): Promise<void> {
    const session = await this.o.store.getSession(sessionId);
    if (!session || session.userId !== ctx.user.id || session.revokedAt !== null) {
      throw new AppError('session_not_found');
    }
    await this.logout(sessionId, log, 'revoked');
  }

  async issueTicket(ctx: AuthContext): Promise<{ ticket: string; expiresIn: number }> {
    const ticket = randomToken();
    const expiresAt = new Date(this.now().getTime() + this.o.ticketTtlSeconds * 1000);
    await this.o.store
      .createTicket(hashToken(ticket), ctx.session.id, expiresAt)
      .catch((error: unknown) => {
        throw unavailableIfStorage(error);
      });
    return { ticket, expiresIn: this.o.ticketTtlSeconds };
  }

  /** Redeems a single-use ticket for the session that asked for it. */
  async redeemTicket(ticket: string): Promise<AuthContext> {
    const sessionId = await this.o.store.redeemTicket(hashToken(ticket)).catch((error: unknown) => {
      throw unavailableIfStorage(error);
    });
    if (!sessionId) throw new AppError('unauthorized', 'The ticket is invalid, used or expired');
    return this.contextFor(sessionId);
  }

  private async contextFor(sessionId: string, userId?: string): Promise<AuthContext> {
    const session = await this.o.store.getSession(sessionId);
    const now = this.now();
    if (
      !session ||
      session.revokedAt !== null ||
      (userId !== undefined && session.userId !== userId) ||
      Date.parse(session.expiresAt) <= now.getTime()
    ) {
      throw new AppError('unauthorized', 'The session has ended');
    }
    const user = await this.o.store.findUserById(session.userId);
    if (!user) throw new AppError('unauthorized', 'The session has ended');
    if (
      (session.lastUsedAt === null ||
        now.getTime() - Date.parse(session.lastUsedAt) >= TOUCH_INTERVAL_MS) &&
      (await this.touch(session.id, now))
    ) {
      session.lastUsedAt = now.toISOString();
    }
    return { user: publicUser(user), session };
  }

  /**
   * Records a use of the session (`lastUsedAt`). Bookkeeping, not the request's purpose: when the
   * write fails (a full disk), it is logged (at most once per 10 s) and skipped, and the request
   * goes on. False when skipped.
   */
  private async touch(sessionId: string, at: Date): Promise<boolean> {
    try {
      await this.o.store.touchSession(sessionId, at);
      return true;
    } catch (error) {
      this.touchFailures += 1;
      if (at.getTime() - this.touchFailureLoggedAt >= TOUCH_FAILURE_LOG_MS) {
        this.o.log?.warn(
          { err: error, skipped: this.touchFailures },
          'sessions: lastUsedAt update failed; skipped',
        );
        this.touchFailureLoggedAt = at.getTime();
        this.touchFailures = 0;
      }
      return false;
    }
  }

  private async tokensFor(
    user: User,
    session: Session,
    refreshToken: string,
  ): Promise<LoginResult> {
    const token = await this.o.tokens.sign({ userId: user.id, sessionId: session.id });
    return { token, tokenType: 'Bearer', expiresIn: this.o.tokens.ttlSeconds, refreshToken, user };
  }

  private refreshExpiry(): Date {
    return new Date(this.now().getTime() + this.o.refreshTtlSeconds * 1000);
  }

  /**
   * Closes the revoked sessions' sockets on every node. The revocation is already committed and
   * every HTTP and handshake check reads the Store, so a bus outage (logged by the bus) must not
   * fail the request: only other nodes' open sockets of those sessions stay open until they drop.
   */
  private async announceRevoked(
    sessionIds: string[],
    reason: RevokeReason,
    log: AuditLog | undefined,
  ): Promise<void> {
    if (sessionIds.length === 0) return;
    log?.info({ event: 'sessions_revoked', reason, sessionIds }, 'sessions revoked');
    await this.o.bus.publish({ type: 'session_revoked', sessionIds }).catch(() => {});
  }
}

/**
 * A write the storage cannot take now (full disk, data directory gone) as a 503 the client may
 * retry later; anything else as it is.
 */
function unavailableIfStorage(error: unknown): unknown {
  if (!(error instanceof StorageUnavailableError)) return error;
  return new AppError('unavailable', 'Storage cannot take writes now; retry later', {
    'retry-after': '5',
  });
}

/** A 429 with Retry-After and the RateLimit-* headers of draft-ietf-httpapi-ratelimit-headers. */
export function rateLimited(retryAfterSeconds: number, limit: number): AppError {
  const seconds = String(Math.max(1, Math.ceil(retryAfterSeconds)));
  return new AppError('rate_limited', `Too many attempts; retry in ${seconds} s`, {
    'retry-after': seconds,
    'ratelimit-limit': String(limit),
    'ratelimit-remaining': '0',
    'ratelimit-reset': seconds,
  });
}
