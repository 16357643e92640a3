import { describe, expect, it } from 'vitest';
import Type from 'typebox';
import { validatorCompiler } from './validator.js';

const compile = (
  httpPart: string,
  schema = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1 })), q: Type.String() }),
) =>
  validatorCompiler({ schema, httpPart, url: '/', method: 'GET' }) as (v: unknown) => {
    value?: unknown;
    error?: unknown[];
  };

describe('validatorCompiler', () => {
  it('converts integer query parameters written as integers', () => {
    expect(compile('querystring')({ limit: '20', q: '5' })).toEqual({
      value: { limit: 20, q: '5' },
    });
  });

  it.each(['1.5', '0x10', '1e2', '', ' 3', 'abc'])('refuses the integer parameter %j', (limit) => {
    expect(compile('querystring')({ limit, q: 'a' }).error).toBeDefined();
  });

  it('never coerces body values', () => {
    expect(compile('body')({ limit: '20', q: 'a' }).error).toBeDefined();
    expect(compile('body')({ q: 5 }).error).toBeDefined();
    expect(compile('body')({ q: 'a', limit: 3 })).toEqual({ value: { q: 'a', limit: 3 } });
  });
});
