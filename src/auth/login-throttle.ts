// The login throttle, after OWASP's guidance on blocking brute force: count failures per account
// AND source together, slow down rather than lock, and never let strangers' failures stop the
// owner's right password from a source the account knows. docs/security.md ("Login throttling")
// explains the policy and what each limit defends.
//
// - Per (account, source): `sourceFailures` failed logins pass at once; after that each attempt
//   must wait after the previous one, twice as long each time (`delayMs`, 2·delayMs, ..., at most
//   `maxDelayMs`). A source is a device cookie of that account when the client presents a valid
//   one, else the client address (an IPv6 address by its /64, which one host typically holds).
// - Per account, across every source: past `accountFailures`, attempts from sources the account
//   does not know wait too, with the same growing delays, shared by all of them. Known sources (an
//   address that logged in to the account within `knownMs`, or a valid device cookie of it) are
//   not slowed by this ceiling, only by their own failures.
// - An attempt is counted when it starts (so parallel attempts cannot all pass), and taken back
//   from the account when the password was right; a right password also clears its source's
//   failures, makes its address known, and renews the device cookie.
// - Unknown usernames are throttled exactly like real ones: nothing tells them apart.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import type { Backoff, Counter, Limits } from '../limits/limits.js';

export interface LoginThrottlePolicy {
  /** Failed logins per account from one source before each further attempt must wait. */
  sourceFailures: number;
  /** Failed logins per account from all sources before unknown sources must wait too. */
  accountFailures: number;
  /** The first wait; it doubles with each further failure. */
  delayMs: number;
  /** The longest wait. */
  maxDelayMs: number;
  /** Failures are forgotten this long after the last one. */
  forgetMs: number;
  /** How long an address or device cookie stays known to an account after a login. */
  knownMs: number;
}

/** Where a login attempt comes from. */
export interface LoginSource {
  /** The client address (as the HTTP limits see it: with TRUST_PROXY, X-Forwarded-For). */
  address: string;
  /** The device cookie the client presented, if any (checked here). */
  device?: string;
}

export type LoginCheck =
  | {
      ok: true;
      /** The password was right: see `LoginThrottle.succeeded`. */
      pass: LoginPass;
    }
  | {
      ok: false;
      retryAfterSeconds: number;
      /** The free failures of the limit that refused (for RateLimit-Limit). */
      limit: number;
    };

/** An attempt that passed the throttle, to report as a success (failures need no report). */
export interface LoginPass {
  readonly account: string;
  readonly address: string;
  readonly sourceKey: string;
  readonly accountKey: string;
  /** The device id of a valid device cookie presented with the attempt. */
  readonly device: string | undefined;
}

export class LoginThrottle {
  private readonly sourceBackoff: Backoff;
  private readonly accountBackoff: Backoff;
  private readonly devices: DeviceCookies;

  /** `secret`: the server's signing secret, from which the device cookies' key is derived. */
  constructor(
    private readonly limits: Limits,
    readonly policy: LoginThrottlePolicy,
    secret: string,
    now: () => number = Date.now,
  ) {
    const { delayMs: baseMs, maxDelayMs: maxMs, forgetMs } = policy;
    this.sourceBackoff = { free: policy.sourceFailures, baseMs, maxMs, forgetMs };
    this.accountBackoff = { free: policy.accountFailures, baseMs, maxMs, forgetMs };
    this.devices = new DeviceCookies(secret, policy.knownMs, now);
  }

  /** Counts an attempt to log in to `username` (any case), or says how long to wait. */
  async check(username: string, from: LoginSource): Promise<LoginCheck> {
    const account = accountId(username);
    const address = sourceAddress(from.address);
    const device =
      from.device === undefined ? undefined : this.devices.verify(account, from.device);
    const known = device !== undefined || (await this.limits.recall(knownKey(account, address)));
    const pass: LoginPass = {
      account,
      address,
      device,
      sourceKey: `login:source:${account}:${device === undefined ? `a:${address}` : `d:${device}`}`,
      accountKey: `login:account:${account}`,
    };
    const counters: Counter[] = [
      { key: pass.sourceKey, backoff: this.sourceBackoff, enforce: true },
      { key: pass.accountKey, backoff: this.accountBackoff, enforce: !known },
    ];
    const result = await this.limits.attempt(counters);
    if (result.ok) return { ok: true, pass };
    return {
      ok: false,
      retryAfterSeconds: Math.max(1, Math.ceil(result.retryAfterMs / 1000)),
      limit: counters[result.refusedBy]!.backoff.free,
    };
  }

  /**
   * The password was right: the source's failures are forgotten, the attempt is taken back from
   * the account's count, the address becomes known. Returns the device cookie to give the client
   * (the same device id as the one it presented, renewed).
   */
  async succeeded(pass: LoginPass): Promise<string> {
    await Promise.all([
      this.limits.reset(pass.sourceKey),
      this.limits.forgive(pass.accountKey),
      this.limits.remember(knownKey(pass.account, pass.address), this.policy.knownMs),
    ]);
    return this.devices.issue(pass.account, pass.device);
  }

  /** The attempt could not be decided (the store failed): it counts as nothing. */
  async undecided(pass: LoginPass): Promise<void> {
    await Promise.all([this.limits.forgive(pass.sourceKey), this.limits.forgive(pass.accountKey)]);
  }
}

const knownKey = (account: string, address: string) => `login:known:${account}:${address}`;

/**
 * The account a username names, as a fixed-size key: lower case (usernames are
 * case-insensitive), hashed so that keys stay short whatever was typed and Redis holds no
 * usernames.
 */
export function accountId(username: string): string {
  return createHash('sha256').update(username.toLowerCase()).digest('base64url').slice(0, 22);
}

/**
 * The source address of a client: IPv4 as it is (an IPv4-mapped IPv6 address as its IPv4), IPv6
 * by its /64 network, which one host or home typically gets whole; anything else as it is.
 */
export function sourceAddress(ip: string): string {
  const plain = ip.replace(/%.*$/, ''); // a zone id names an interface, not a host
  if (isIPv4(plain)) return plain;
  if (!isIPv6(plain)) return ip;
  const groups = expandIPv6(plain);
  const mapped = groups.slice(0, 6).join(':') === '0:0:0:0:0:ffff';
  if (mapped) {
    const [hi, lo] = [parseInt(groups[6]!, 16), parseInt(groups[7]!, 16)];
    return [hi >> 8, hi & 255, lo >> 8, lo & 255].join('.');
  }
  return `${groups.slice(0, 4).join(':')}::/64`;
}

/** The eight groups of an IPv6 address, each in lower-case hex without leading zeros. */
function expandIPv6(ip: string): string[] {
  let text = ip.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4[1]!.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, -v4[1]!.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : Array<string>(8 - h.length - t.length).fill('0');
  return [...h, ...zeros, ...t].map((g) => parseInt(g, 16).toString(16));
}

/**
 * Device cookies (OWASP): a random device id bound to one account and signed with a key derived
 * from the server's secret, valid for `ttlMs` after it was issued: `<id>.<issued s>.<mac>`.
 * Stateless: any node with the same secret can check one.
 */
export class DeviceCookies {
  private readonly key: Buffer;

  constructor(
    secret: string,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.key = createHmac('sha256', secret).update('chat device cookie v1').digest();
  }

  /** A cookie value for `account`: for `device` (renewed) or for a new device. */
  issue(account: string, device = randomBytes(16).toString('base64url')): string {
    const issued = Math.floor(this.now() / 1000).toString();
    return `${device}.${issued}.${this.mac(account, device, issued)}`;
  }

  /** The device id, if `cookie` is a cookie of `account` that has not expired. */
  verify(account: string, cookie: string): string | undefined {
    const parts = cookie.split('.');
    if (parts.length !== 3) return undefined;
    const [device, issued, mac] = parts as [string, string, string];
    if (!/^[A-Za-z0-9_-]{22}$/.test(device) || !/^\d{1,12}$/.test(issued)) return undefined;
    const expected = Buffer.from(this.mac(account, device, issued));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    if (Number(issued) * 1000 + this.ttlMs <= this.now()) return undefined;
    return device;
  }

  private mac(account: string, device: string, issued: string): string {
    return createHmac('sha256', this.key)
      .update(`${account}.${device}.${issued}`)
      .digest('base64url');
  }
}
