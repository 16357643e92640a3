// The pino logger options: secrets never reach a log line (headers, bodies, token query params).
import type { LoggerOptions } from 'pino';

/** Query parameters whose values never reach a log line (names compared decoded, in any case). */
const SECRET_PARAMS = new Set(['token', 'ticket']);
/** Longer URLs are cut in log lines: what follows is noise at best and a payload at worst. */
export const LOGGED_URL_MAX = 512;

/**
 * A URL fit for a log line: the values of `token` and `ticket` query parameters redacted (also
 * when the name is percent-encoded, as `URLSearchParams` decodes it: `?%74oken=`), and cut to
 * LOGGED_URL_MAX characters after redaction.
 */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  let out = url;
  if (q !== -1) {
    const query = url
      .slice(q + 1)
      .split('&')
      .map((param) => {
        const eq = param.indexOf('=');
        if (eq === -1) return param;
        const name = param.slice(0, eq);
        return SECRET_PARAMS.has(decodeName(name).toLowerCase()) ? `${name}=[REDACTED]` : param;
      })
      .join('&');
    out = `${url.slice(0, q)}?${query}`;
  }
  return out.length > LOGGED_URL_MAX
    ? `${out.slice(0, LOGGED_URL_MAX)}...[${out.length - LOGGED_URL_MAX} more characters]`
    : out;
}

/** A query parameter name as URLSearchParams reads it (`+` is a space); raw if not decodable. */
function decodeName(name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    return name;
  }
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
