// Access tokens (HS256 JWTs that name their session) and opaque random tokens (refresh tokens,
// WebSocket tickets) that are stored only as SHA-256 hashes.
import { SignJWT, jwtVerify } from 'jose';
import { createHash, randomBytes } from 'node:crypto';

export interface AccessClaims {
  userId: string;
  sessionId: string;
}

const ISSUER = 'chat-server';
/** Every claim `sign` sets: a token without one of them was not issued by this server as it is. */
const REQUIRED_CLAIMS = ['exp', 'iat', 'iss', 'sub', 'sid'];

export class AccessTokens {
  private readonly key: Uint8Array;

  constructor(
    secret: string,
    readonly ttlSeconds: number,
  ) {
    this.key = new TextEncoder().encode(secret);
  }

  sign(claims: AccessClaims): Promise<string> {
    return new SignJWT({ sid: claims.sessionId })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(claims.userId)
      .setIssuer(ISSUER)
      .setIssuedAt()
      .setExpirationTime(`${this.ttlSeconds}s`)
      .sign(this.key);
  }

  /**
   * The claims of a valid token, or undefined for any bad one (alg none, tampered, expired, or
   * missing any claim the server issues: a correctly signed token without `exp` never expires).
   */
  async verify(token: string): Promise<AccessClaims | undefined> {
    try {
      const { payload } = await jwtVerify(token, this.key, {
        algorithms: ['HS256'],
        issuer: ISSUER,
        requiredClaims: REQUIRED_CLAIMS,
      });
      if (typeof payload.sub !== 'string' || typeof payload.sid !== 'string') return undefined;
      return { userId: payload.sub, sessionId: payload.sid };
    } catch {
      return undefined;
    }
  }
}

/** 256 random bits, URL-safe. */
export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

/** How opaque tokens are kept: a leaked database does not give usable tokens. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}
