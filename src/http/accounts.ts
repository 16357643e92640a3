// Account routes: register, login, refresh, logout, password change, WebSocket tickets.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import type { Accounts } from '../auth/accounts.js';
import { AppError } from '../errors.js';
import {
  bearer,
  Credentials,
  errors,
  NoContent,
  Password,
  TokenResponse,
  User,
  Username,
} from './schemas.js';
import type { RouteHook } from './app-types.js';

export interface AccountRoutesOptions {
  accounts: Accounts;
  authenticate: RouteHook;
  registerPerMinute: number;
  loginPerMinute: number;
  /** The device cookie set by a login: its lifetime, and whether only HTTPS may carry it. */
  deviceCookie: { maxAgeSeconds: number; secure: boolean };
}

/** The device cookie's name: the client's mark as a known source of an account (login-throttle.ts). */
export const DEVICE_COOKIE = 'chat_device';

/** The value of cookie `name` in a Cookie header, if present. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

const codePoints = (s: string): number => [...s].length;

function checkNewPassword(password: string, field: string): void {
  const n = codePoints(password);
  if (n < 8 || n > 256)
    throw new AppError('invalid_request', `${field} must be 8 to 256 characters`);
}

export const accountRoutes: FastifyPluginAsyncTypebox<AccountRoutesOptions> = async (app, o) => {
  const { accounts, authenticate } = o;

  app.post(
    '/register',
    {
      config: { rateLimit: { max: o.registerPerMinute, timeWindow: 60_000 } },
      schema: {
        summary: 'Create an account',
        tags: ['accounts'],
        body: Type.Object({ username: Username, password: Password }),
        response: { 201: User, ...errors(400, 409, 415, 429) },
      },
    },
    async (request, reply) => {
      checkNewPassword(request.body.password, 'password');
      const user = await accounts.register(request.body.username, request.body.password);
      return reply.code(201).send(user);
    },
  );

  app.post(
    '/login',
    {
      config: { rateLimit: { max: o.loginPerMinute, timeWindow: 60_000 } },
      schema: {
        summary: 'Log in: an access token and a refresh token for a new session',
        description:
          "Failed logins are throttled per account and source with growing delays (429 with Retry-After), never locked. A login sets the `chat_device` cookie: sent back with later logins to the same account, it marks a known device, which other sources' failures do not slow down.",
        tags: ['accounts'],
        body: Credentials,
        response: { 200: TokenResponse, ...errors(400, 401, 415, 429) },
      },
    },
    async (request, reply) => {
      const userAgent = request.headers['user-agent']?.slice(0, 256) ?? null;
      const { result, deviceCookie } = await accounts.login(
        request.body.username,
        request.body.password,
        userAgent,
        { address: request.ip, device: cookieValue(request.headers.cookie, DEVICE_COOKIE) },
      );
      const attributes = [
        `Max-Age=${o.deviceCookie.maxAgeSeconds}`,
        'Path=/login',
        'HttpOnly',
        'SameSite=Strict',
        ...(o.deviceCookie.secure ? ['Secure'] : []),
      ];
      reply.header('set-cookie', `${DEVICE_COOKIE}=${deviceCookie}; ${attributes.join('; ')}`);
      return result;
    },
  );

  app.post(
    '/token/refresh',
    {
      config: { rateLimit: { max: o.loginPerMinute, timeWindow: 60_000 } },
      schema: {
        summary: 'Exchange a refresh token for new tokens (the old one stops working)',
        description: 'Presenting a refresh token that was already used revokes its whole session.',
        tags: ['accounts'],
        body: Type.Object({ refreshToken: Type.String({ minLength: 1, maxLength: 512 }) }),
        response: { 200: TokenResponse, ...errors(400, 401, 429) },
      },
    },
    async (request) => accounts.refresh(request.body.refreshToken),
  );

  app.post(
    '/logout',
    {
      preHandler: authenticate,
      schema: {
        summary: 'Revoke the current session',
        tags: ['accounts'],
        security: bearer,
        response: { 204: NoContent, ...errors(401) },
      },
    },
    async (request, reply) => {
      await accounts.logout(request.auth.session.id);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/users/me/password',
    {
      preHandler: authenticate,
      schema: {
        summary: 'Change the password; every other session is revoked',
        tags: ['accounts'],
        security: bearer,
        body: Type.Object({ currentPassword: Type.String(), newPassword: Password }),
        response: { 204: NoContent, ...errors(400, 401, 403) },
      },
    },
    async (request, reply) => {
      checkNewPassword(request.body.newPassword, 'newPassword');
      await accounts.changePassword(
        request.auth,
        request.body.currentPassword,
        request.body.newPassword,
      );
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/websocket/ticket',
    {
      preHandler: authenticate,
      schema: {
        summary: 'A single-use ticket to open the WebSocket without a token in the URL',
        tags: ['accounts'],
        security: bearer,
        response: {
          200: Type.Object({
            ticket: Type.String(),
            expiresIn: Type.Integer({ description: 'Seconds' }),
          }),
          ...errors(401),
        },
      },
    },
    async (request) => accounts.issueTicket(request.auth),
  );
};
