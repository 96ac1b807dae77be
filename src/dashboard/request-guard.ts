import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** The cookie that carries the cross-site request token (double-submit). */
export const TOKEN_COOKIE = 'sluice_dashboard_token';

/** The token of this browser: its cookie, or a new one to set. */
export function tokenOf(req: IncomingMessage): { token: string; setCookie: string | undefined } {
  const existing = cookie(req, TOKEN_COOKIE);
  if (existing && /^[0-9a-f]{64}$/.test(existing)) return { token: existing, setCookie: undefined };
  const token = randomBytes(32).toString('hex');
  // SameSite=Strict: a cross-site form never carries it, even where Origin is missing.
  return { token, setCookie: `${TOKEN_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict` };
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return undefined;
}

/**
 * Why a POST is refused, or undefined when it may go on. Two checks, both required:
 *  1. same origin: a browser's `Sec-Fetch-Site` must say same-origin (or none: typed by
 *     the user), and an `Origin` header must name this very host;
 *  2. a token: the form's `token` field (or an `X-Sluice-Token` header) equals the
 *     SameSite=Strict cookie; or, for scripts, an `X-Requested-By` header, which no
 *     cross-site page can send without a CORS preflight, and preflights are refused.
 * A replica needs no shared secret: any replica checks any page's token.
 */
export function refusal(req: IncomingMessage, fields: Record<string, string>): string | undefined {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `cross-site request refused (Sec-Fetch-Site: ${String(site)})`;
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== 'null') {
    let host: string;
    try {
      host = new URL(origin).host;
    } catch {
      return 'cross-site request refused (bad Origin)';
    }
    if (host !== req.headers.host) return `cross-site request refused (Origin ${origin} is not this host)`;
  } else if (origin === 'null') {
    return 'cross-site request refused (Origin: null)';
  }
  if (req.headers['x-requested-by'] !== undefined) return undefined;
  const expected = cookie(req, TOKEN_COOKIE);
  const given = fields.token ?? (typeof req.headers['x-sluice-token'] === 'string' ? req.headers['x-sluice-token'] : undefined);
  if (!expected || !given || expected.length !== given.length || !timingSafeEqual(Buffer.from(expected), Buffer.from(given))) {
    return 'missing or wrong dashboard token (reload the page and try again)';
  }
  return undefined;
}
