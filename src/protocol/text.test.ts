import { describe, expect, it } from 'vitest';
import { malformedTextAt, percentEscapesAreUtf8 } from './text.js';

describe('malformedTextAt', () => {
  it('finds a lone surrogate in any string, property name included, and names where', () => {
    expect(malformedTextAt({ a: 'ok', b: ['x', { c: 'bad \ud800' }] })).toBe('b/1/c');
    expect(malformedTextAt({ ['key\udc00']: 1 })).toBe('(a property name)');
    expect(malformedTextAt('\udfff')).toBe('');
    expect(malformedTextAt(['\ud83d'])).toBe('0');
  });

  it('accepts well-formed text: pairs, astral characters, U+FFFD, non-strings', () => {
    expect(
      malformedTextAt({ a: '😀 \ud83d\ude00 \ufffd é', n: 1, t: true, z: null, l: [] }),
    ).toBeUndefined();
  });

  it('walks nesting of any depth without recursion', () => {
    let deep: unknown = 'end \ud800';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(malformedTextAt(deep)).toBe(Array(100_000).fill('0').join('/'));
  });
});

describe('percentEscapesAreUtf8', () => {
  it('accepts URLs whose escapes decode to UTF-8, and stray percent signs', () => {
    for (const url of ['/users?q=abc', '/users?q=%F0%9F%98%80&x=%41', '/a?b=100%', '/a?b=%zz'])
      expect(percentEscapesAreUtf8(url)).toBe(true);
  });

  it('refuses escapes of a surrogate, of bytes that are not UTF-8, and of a cut sequence', () => {
    for (const url of ['/users?q=%ED%A0%80', '/users?q=%FF', '/x/%C0%AF', '/users?q=%F0%9F%98'])
      expect(percentEscapesAreUtf8(url)).toBe(false);
  });
});
