// The docs stay true where a test can tell: every setting is in the README's table.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../src/config.js';

const readme = fs.readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it.each(Object.keys(ConfigSchema.properties))('documents the setting %s', (key) => {
    expect(readme).toMatch(new RegExp(`^\\| \`${key}\` +\\|`, 'm'));
  });
});
