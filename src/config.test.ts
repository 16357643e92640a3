import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, storageTarget } from './config.js';

describe('loadConfig', () => {
  it('fills every default from the schema', () => {
    const config = loadConfig({});
    expect(config.PORT).toBe(3000);
    expect(config.DATA_DIR).toBe('./data');
    expect(config.ACCESS_TOKEN_TTL_SEC).toBe(900);
    expect(config.RATE_LOGIN_PER_MIN).toBeGreaterThanOrEqual(60);
    expect(config.RATE_REGISTER_PER_MIN).toBeGreaterThanOrEqual(60);
    expect(config.TRUST_PROXY).toBe(false);
  });

  it('converts numbers and booleans from strings', () => {
    const config = loadConfig({ PORT: '8080', TRUST_PROXY: 'true', RATE_MESSAGES_BURST: '7' });
    expect(config).toMatchObject({ PORT: 8080, TRUST_PROXY: true, RATE_MESSAGES_BURST: 7 });
  });

  it('requires JWT_SECRET with REDIS_URL, without echoing the URL', () => {
    expect(() => loadConfig({ REDIS_URL: 'redis://:pw@cache:6379' })).toThrow(
      /JWT_SECRET: required when REDIS_URL is set/,
    );
    expect(() => loadConfig({ REDIS_URL: 'redis://:pw@cache:6379' })).not.toThrow(/pw@/);
    const secret = 'x'.repeat(32);
    expect(loadConfig({ REDIS_URL: 'redis://cache:6379', JWT_SECRET: secret }).REDIS_URL).toBe(
      'redis://cache:6379',
    );
  });

  it('drains and spreads nothing by default; the spread must fit in the shutdown timeout', () => {
    expect(loadConfig({})).toMatchObject({ SHUTDOWN_DRAIN_MS: 0, SHUTDOWN_CLOSE_SPREAD_MS: 0 });
    expect(
      loadConfig({ SHUTDOWN_DRAIN_MS: '15000', SHUTDOWN_CLOSE_SPREAD_MS: '5000' }),
    ).toMatchObject({ SHUTDOWN_DRAIN_MS: 15_000, SHUTDOWN_CLOSE_SPREAD_MS: 5000 });
    expect(() => loadConfig({ SHUTDOWN_CLOSE_SPREAD_MS: '10000' })).toThrow(
      /SHUTDOWN_CLOSE_SPREAD_MS: must be less than SHUTDOWN_TIMEOUT_MS \(10000\)/,
    );
    expect(
      loadConfig({ SHUTDOWN_CLOSE_SPREAD_MS: '10000', SHUTDOWN_TIMEOUT_MS: '20000' })
        .SHUTDOWN_CLOSE_SPREAD_MS,
    ).toBe(10_000);
  });

  it('lists every invalid setting at once', () => {
    let error: unknown;
    try {
      loadConfig({
        PORT: 'eighty',
        JWT_SECRET: 'short',
        ARGON2_MEMORY_KIB: '1024',
        LOG_LEVEL: 'loud',
        DATABASE_URL: 'mysql://x',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    for (const key of ['PORT', 'JWT_SECRET', 'ARGON2_MEMORY_KIB', 'LOG_LEVEL', 'DATABASE_URL'])
      expect(problems).toContain(key);
    // A secret's value is never echoed.
    expect(problems).not.toContain('"short"');
  });

  it('resolves where data lives', () => {
    expect(storageTarget(loadConfig({ DATA_DIR: '/srv/chat' }))).toEqual({
      kind: 'sqlite',
      file: '/srv/chat/chat.db',
    });
    expect(storageTarget(loadConfig({ DATABASE_URL: 'sqlite:rel/x.db' }))).toEqual({
      kind: 'sqlite',
      file: 'rel/x.db',
    });
    expect(storageTarget(loadConfig({ DATABASE_URL: 'postgres://u@h/db' }))).toEqual({
      kind: 'postgres',
      url: 'postgres://u@h/db',
    });
  });
});
