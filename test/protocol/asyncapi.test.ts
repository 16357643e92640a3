// /asyncapi.json: generated from the frame unions and the error catalogue, served as generated,
// and valid AsyncAPI 3 as @asyncapi/parser reads it (no errors, no warnings).
import { Parser } from '@asyncapi/parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLOSE_ERRORS, ERRORS, FRAME_ERRORS } from '../../src/errors.js';
import { asyncApiDocument } from '../../src/protocol/asyncapi.js';
import { ClientFrame, ServerFrame } from '../../src/protocol/frames.js';
import { request, startServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.close());

describe('/asyncapi.json', () => {
  it('is served exactly as generated', async () => {
    const reply = await request(server, 'GET', '/asyncapi.json');
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual(JSON.parse(JSON.stringify(asyncApiDocument())));
  });

  it('parses as AsyncAPI 3 without a diagnostic of error or warning severity', async () => {
    const { document, diagnostics } = await new Parser().parse(JSON.stringify(asyncApiDocument()));
    // Severity 0 is an error, 1 a warning (Spectral's scale).
    const serious = diagnostics.filter((d) => d.severity <= 1);
    expect(serious).toEqual([]);
    expect(document).toBeDefined();
    const names = document!
      .allMessages()
      .all()
      .map((m) => m.name());
    expect(names.sort()).toEqual(
      [...ClientFrame.anyOf, ...ServerFrame.anyOf]
        .map((s) => (s as { title?: string }).title)
        .sort(),
    );
  });

  it('lists every frame error code and every close code of the catalogue', () => {
    const doc = asyncApiDocument() as {
      info: { 'x-close-codes': Array<{ code: number; reason: string }> };
      channels: { chat: { messages: { error: { payload: { properties: { code: unknown } } } } } };
    };
    expect(doc.info['x-close-codes']).toEqual(
      CLOSE_ERRORS.map((key) => expect.objectContaining({ code: ERRORS[key].close, reason: key })),
    );
    const codes = JSON.stringify(doc.channels.chat.messages.error.payload.properties.code);
    for (const key of FRAME_ERRORS) expect(codes).toContain(`"${key}"`);
  });
});
