// /openapi.json is fit for client generators: Redocly's recommended rules find nothing in it
// (every operation has an operationId and declares its security, there is a server URL), and
// every route of the app is in it.
import { createConfig, lintFromString } from '@redocly/openapi-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, startServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.close());

describe('/openapi.json', () => {
  it('passes redocly lint with the recommended rules: no error, no warning', async () => {
    const doc = await request(server, 'GET', '/openapi.json');
    expect(doc.status).toBe(200);
    const problems = await lintFromString({
      source: JSON.stringify(doc.body),
      absoluteRef: 'openapi.json',
      config: await createConfig({ extends: ['recommended'] }),
    });
    const shown = problems.map(
      (p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location[0]?.pointer}`,
    );
    expect(shown).toEqual([]);
  });

  it('names every operation uniquely', async () => {
    const doc = (await request(server, 'GET', '/openapi.json')).body as {
      paths: Record<string, Record<string, { operationId?: string }>>;
    };
    const ids = Object.values(doc.paths).flatMap((p) => Object.values(p).map((o) => o.operationId));
    expect(ids.every((id) => typeof id === 'string')).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBeGreaterThanOrEqual(29);
  });
});
