// The pino logger options: secrets never reach a log line (headers, bodies, token query params).
import type { LoggerOptions } from 'pino';

/** Query parameters whose values never reach a log line. */
export function redactUrl(url: string): string {
  return url.replace(/([?&](?:token|ticket)=)[^&]*/gi, '$1[REDACTED]');
}

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'password',
        'currentPassword',
        'newPassword',
        'token',
        'refreshToken',
        'ticket',
        '*.password',
        '*.token',
        '*.refreshToken',
      ],
      censor: '[REDACTED]',
    },
    serializers: {
      req: (req: { method?: string; url?: string; ip?: string }) => ({
        method: req.method,
        url: redactUrl(req.url ?? ''),
        ip: req.ip,
      }),
    },
  };
}
