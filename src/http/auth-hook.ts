// Authenticates a request from `Authorization: Bearer <token>` and attaches who it acts for.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Accounts, AuthContext } from '../auth/accounts.js';
import { AppError } from '../errors.js';
import { bearerToken } from '../auth/bearer.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the `authenticate` hook on protected routes. */
    auth: AuthContext;
  }
}

export function authenticateWith(accounts: Accounts) {
  return async function authenticate(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const token = bearerToken(request.headers.authorization);
    if (!token) throw new AppError('unauthorized', 'Send Authorization: Bearer <access token>');
    request.auth = await accounts.authenticate(token);
  };
}
