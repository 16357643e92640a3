// TypeBox schemas shared by routes: each one validates requests, types handlers and documents
// the API in the generated OpenAPI document.
import Type from 'typebox';

export const Username = Type.String({
  minLength: 3,
  maxLength: 32,
  pattern: '^[A-Za-z0-9_.-]+$',
  description: '3 to 32 characters of A-Z a-z 0-9 _ . -, unique regardless of case',
});

/** Passwords count code points; the length check is done in code (JSON Schema counts UTF-16 units). */
export const Password = Type.String({
  description: '8 to 256 characters; common passwords are refused',
});

export const Credentials = Type.Object({ username: Type.String(), password: Password });

export const User = Type.Object({
  id: Type.String(),
  username: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
});

export const UserWithPresence = Type.Object({
  id: Type.String(),
  username: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
  online: Type.Boolean(),
});

export const TokenResponse = Type.Object({
  token: Type.String({ description: 'Access token (JWT)' }),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer({ description: 'Seconds until the access token expires' }),
  refreshToken: Type.String({ description: 'Opaque, single-use; rotated on every refresh' }),
  user: User,
});

export { Message, MessageId } from '../protocol/message.js';

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'Stable machine code (see docs/protocol.md)' }),
      message: Type.String(),
    }),
  },
  { description: 'Every error response has this shape' },
);

/** Error responses a route may give, for the OpenAPI document. */
export function errors(...statuses: number[]): Record<number, typeof ErrorBody> {
  return Object.fromEntries(statuses.map((s) => [s, ErrorBody]));
}

export const NoContent = Type.Null({ description: 'No content' });

export const bearer = [{ bearerAuth: [] }];
