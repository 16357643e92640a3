// Assertions and small helpers shared by the HTTP tests (not a test file itself).
import { expect } from 'vitest';
import { SignJWT } from 'jose';
import { PASSWORD, request, type Reply } from '../helpers/server.js';

/** The HS256 key that test/helpers/server.ts gives the app. */
export const TEST_SECRET = 'test-secret-that-is-at-least-32-characters';
export const ISSUER = 'chat-server';

/** An ISO-8601 UTC timestamp. */
export const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** Checks status, JSON content type and the `{"error": {"code", "message"}}` shape (and nothing more). */
export function expectError(reply: Reply, status: number, code?: string): void {
  expect(reply.status, JSON.stringify(reply.body)).toBe(status);
  expect(reply.headers.get('content-type')).toBe('application/json; charset=utf-8');
  expect(reply.body).toBeTypeOf('object');
  expect(Object.keys(reply.body)).toEqual(['error']);
  expect(Object.keys(reply.body.error).sort()).toEqual(['code', 'message']);
  expect(reply.body.error.code).toMatch(/^[a-z_]+$/);
  expect(reply.body.error.message).toBeTypeOf('string');
  expect(reply.body.error.message.length).toBeGreaterThan(0);
  if (code !== undefined) expect(reply.body.error.code).toBe(code);
}

/** A 401 for a missing or bad access token: error shape and `WWW-Authenticate: Bearer`. */
export function expectUnauthorized(reply: Reply, code = 'unauthorized'): void {
  expectError(reply, 401, code);
  expect(reply.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
}

/** A raw body with a content type (default application/json). */
export function raw(
  server: { url: string },
  method: string,
  path: string,
  body: string,
  contentType = 'application/json',
): Promise<Reply> {
  return request(server, method, path, { raw: body, headers: { 'content-type': contentType } });
}

export function register(
  server: { url: string },
  username: string,
  password = PASSWORD,
): Promise<Reply> {
  return request(server, 'POST', '/register', { body: { username, password } });
}

export function login(
  server: { url: string },
  username: string,
  password = PASSWORD,
  headers: Record<string, string> = {},
): Promise<Reply> {
  return request(server, 'POST', '/login', { body: { username, password }, headers });
}

/** Logs in and fails the test unless it succeeds. */
export async function loginOk(
  server: { url: string },
  username: string,
  password = PASSWORD,
  headers: Record<string, string> = {},
): Promise<{ token: string; refreshToken: string; user: { id: string; username: string } }> {
  const r = await login(server, username, password, headers);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body;
}

export interface SessionView {
  id: string;
  createdAt: string;
  lastUsedAt: string | null;
  userAgent: string | null;
  current: boolean;
}

/** GET /sessions with `token`; fails unless 200. */
export async function sessionsOf(server: { url: string }, token: string): Promise<SessionView[]> {
  const r = await request<{ sessions: SessionView[] }>(server, 'GET', '/sessions', { token });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.sessions;
}

/** The id of the session the token belongs to. */
export async function currentSessionId(server: { url: string }, token: string): Promise<string> {
  const current = (await sessionsOf(server, token)).filter((s) => s.current);
  expect(current).toHaveLength(1);
  return current[0]!.id;
}

/** Signs an HS256 access token by hand (the server's format unless overridden). */
export function signAccessToken(
  claims: { sub: string; sid?: string; iss?: string; exp?: number; iat?: number },
  options: { secret?: string; alg?: string } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = {};
  if (claims.sid !== undefined) payload.sid = claims.sid;
  return new SignJWT(payload)
    .setProtectedHeader({ alg: options.alg ?? 'HS256', typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuer(claims.iss ?? ISSUER)
    .setIssuedAt(claims.iat ?? now)
    .setExpirationTime(claims.exp ?? now + 600)
    .sign(new TextEncoder().encode(options.secret ?? TEST_SECRET));
}

export const b64url = (value: unknown): string =>
  Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');

/** The decoded payload of a JWT (no verification). */
export function jwtPart(token: string, index: 0 | 1): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[index]!, 'base64url').toString('utf8'));
}
