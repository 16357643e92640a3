// Writes client/src/protocol.ts: the TypeScript types of every WebSocket frame and HTTP body the
// client library uses, generated from the server's own definitions so that they are never
// written twice: the TypeBox schemas of src/protocol/ (frames and the message), the error
// catalogue of src/errors.ts, and the OpenAPI document the routes of src/http/ produce.
//
//   npx tsx client/scripts/generate.ts           writes the file
//   npx tsx client/scripts/generate.ts --check   fails if the file is not what it would write
//
// client/test/protocol.test.ts runs the check and compares the types with `Static<typeof ...>`.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import * as prettier from 'prettier';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { CLOSE_ERRORS, ERRORS, FRAME_ERRORS } from '../../src/errors.js';
import * as frames from '../../src/protocol/frames.js';
import * as message from '../../src/protocol/message.js';
import { openSqliteStore } from '../../src/storage/sqlite-store.js';

type Schema = Record<string, unknown>;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const OUTPUT = path.join(root, 'client/src/protocol.ts');

const isSchema = (v: unknown): v is Schema =>
  typeof v === 'object' &&
  v !== null &&
  !(v instanceof RegExp) &&
  ('type' in v || 'anyOf' in v || 'const' in v);

/** The exported names of a module's source file, in declaration order. */
function exportOrder(file: string): string[] {
  const text = fs.readFileSync(path.join(root, file), 'utf8');
  return [...text.matchAll(/^export const (\w+)/gm)].map((m) => m[1] as string);
}

const doc = (text: unknown, indent = ''): string =>
  typeof text === 'string' && text !== ''
    ? `${indent}/** ${text.replace(/\*\//g, '*\\/').replace(/\n/g, ' ')} */\n`
    : '';

const PRIMITIVES = new Set(['string', 'number', 'boolean', 'null', 'unknown']);

/**
 * Renders JSON Schemas (as TypeBox makes them, and as the OpenAPI document shows them: `const`
 * there is a one-value `enum`) as TypeScript. A sub-schema that renders like a named type is
 * written as that name.
 */
class Renderer {
  /** Bare rendering (no comments) of each named non-primitive type -> its name. */
  private readonly names = new Map<string, string>();

  name(name: string, schema: Schema): void {
    const bare = this.type(schema, false);
    if (!PRIMITIVES.has(bare)) this.names.set(bare, name);
  }

  /** A type expression; `withDocs` adds property comments; `self` is not replaced by its name. */
  type(schema: Schema, withDocs: boolean, self?: string): string {
    const named = this.names.get(this.render(schema, false));
    if (named !== undefined && named !== self) return named;
    return this.render(schema, withDocs);
  }

  private render(schema: Schema, withDocs: boolean): string {
    const sub = (s: unknown) => this.type(s as Schema, withDocs);
    if ('const' in schema) return JSON.stringify(schema.const);
    if (Array.isArray(schema.enum)) return schema.enum.map((v) => JSON.stringify(v)).join(' | ');
    if (Array.isArray(schema.anyOf)) return (schema.anyOf as Schema[]).map(sub).join(' | ');
    const type = schema.type;
    if (Array.isArray(type)) return type.map((t) => this.render({ type: t }, withDocs)).join(' | ');
    switch (type) {
      case 'string':
        return 'string';
      case 'integer':
      case 'number':
        return 'number';
      case 'boolean':
        return 'boolean';
      case 'null':
        return 'null';
      case 'array': {
        const item = sub(schema.items);
        return `Array<${item}>`;
      }
      case 'object': {
        const required = new Set((schema.required as string[] | undefined) ?? []);
        const props = Object.entries((schema.properties as Record<string, Schema>) ?? {});
        if (props.length === 0) return 'Record<string, never>';
        const lines = props.map(([key, value]) => {
          const comment = withDocs ? doc(value.description) : '';
          return `${comment}${key}${required.has(key) ? '' : '?'}: ${sub(value)};`;
        });
        return `{\n${lines.join('\n')}\n}`;
      }
      default:
        return 'unknown';
    }
  }
}

/** The OpenAPI document of the routes, from an app that is built but never listens. */
async function openApi(): Promise<Schema> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'client-generate-'));
  const store = await openSqliteStore({ file: path.join(dir, 'chat.db') });
  const bus = new MemoryBus();
  try {
    const app = await buildApp({
      config: loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', DATA_DIR: dir }),
      store,
      bus,
      logger: pino({ level: 'silent' }),
      jwtSecret: 'only-to-build-the-openapi-document-0000',
    });
    await app.ready();
    const document = app.swagger() as unknown as Schema;
    await app.close();
    return JSON.parse(JSON.stringify(document)) as Schema;
  } finally {
    await store.close();
    await bus.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Follows a path of keys and array indexes into a JSON value. */
function at(value: unknown, keys: Array<string | number>): Schema {
  let v: unknown = value;
  for (const k of keys) v = (v as Record<string | number, unknown> | undefined)?.[k];
  if (!isSchema(v)) throw new Error(`no schema at ${keys.join(' ')}`);
  return v;
}

const response = (method: string, route: string, status: number, ...inner: string[]) => [
  'paths',
  route,
  method,
  'responses',
  String(status),
  'content',
  'application/json',
  'schema',
  ...inner,
];
const requestBody = (method: string, route: string) => [
  'paths',
  route,
  method,
  'requestBody',
  'content',
  'application/json',
  'schema',
];

/** The HTTP bodies the library types, each named after where the OpenAPI document has it. */
const HTTP_TYPES: Array<[name: string, keys: string[], description: string]> = [
  [
    'User',
    response('post', '/register', 201),
    'An account, as POST /register and GET /users/me return it',
  ],
  ['TokenResponse', response('post', '/login', 200), 'POST /login and POST /token/refresh'],
  [
    'Ticket',
    response('post', '/websocket/ticket', 200),
    'POST /websocket/ticket: opens the WebSocket once',
  ],
  ['UserWithPresence', response('get', '/users/{username}', 200), 'GET /users/{username}'],
  ['UserList', response('get', '/users', 200), 'GET /users?q= and GET /users/me/blocks'],
  [
    'Session',
    response('get', '/sessions', 200, 'properties', 'sessions', 'items'),
    'One session of GET /sessions',
  ],
  ['SessionList', response('get', '/sessions', 200), 'GET /sessions'],
  [
    'ConversationMember',
    response('get', '/conversations/{id}', 200, 'properties', 'members', 'items'),
    'A member of a conversation, with their watermarks',
  ],
  [
    'Conversation',
    response('get', '/conversations/{id}', 200),
    'A conversation as the caller sees it',
  ],
  ['ConversationPage', response('get', '/conversations', 200), 'GET /conversations'],
  [
    'MessagePage',
    response('get', '/messages', 200),
    'GET /messages and GET /conversations/{id}/messages',
  ],
  ['SyncPage', response('get', '/sync', 200), 'GET /sync: a page of the caller\u2019s stream'],
  ['Settings', response('get', '/users/me/settings', 200), 'The caller\u2019s privacy settings'],
  [
    'SettingsUpdate',
    requestBody('patch', '/users/me/settings'),
    'PATCH /users/me/settings: the fields to change',
  ],
  ['NewGroup', requestBody('post', '/conversations'), 'POST /conversations'],
  ['ErrorBody', response('post', '/login', 401), 'Every HTTP error answer'],
];

export async function generate(): Promise<string> {
  const r = new Renderer();
  const out: string[] = [
    '// GENERATED by client/scripts/generate.ts from the server\u2019s definitions: the TypeBox schemas',
    '// of src/protocol/ (frames, message), the error catalogue of src/errors.ts and the OpenAPI',
    '// document of the routes in src/http/. Do not edit: run `npm run client:generate`.',
    '',
  ];

  // The error catalogue.
  const codes = [
    ...new Set(Object.entries(ERRORS).map(([key, spec]) => ('code' in spec ? spec.code : key))),
  ];
  out.push(
    '/** Every error code the server sends (HTTP bodies, error frames, refused handshakes). */',
  );
  out.push(`export type ErrorCode = ${codes.map((c) => JSON.stringify(c)).join(' | ')};`);
  const frameCodes = FRAME_ERRORS.map((c) => JSON.stringify(c)).join(' | ');
  out.push('/** The codes an `error` frame can carry. */');
  out.push(`export type FrameErrorCode = ${frameCodes};`);
  out.push('/** The close codes the server sends, by reason (the close frame\u2019s reason). */');
  out.push(
    `export const CLOSE_CODES = { ${CLOSE_ERRORS.map((k) => `${k}: ${ERRORS[k].close}`).join(', ')} } as const;`,
  );
  r.name('FrameErrorCode', { anyOf: FRAME_ERRORS.map((c) => ({ const: c })) });

  // Constants of the message.
  out.push(`/** Most code points in a message's content. */`);
  out.push(`export const CONTENT_MAX = ${message.CONTENT_MAX};`);
  out.push('/** Largest WebSocket frame and HTTP body, in bytes. */');
  out.push(`export const MAX_PAYLOAD_BYTES = ${message.MAX_PAYLOAD_BYTES};`);
  out.push('/** Message ids: decimal strings of one strictly increasing sequence. */');
  out.push(`export const MESSAGE_ID_PATTERN = ${JSON.stringify(message.MESSAGE_ID_PATTERN)};`);

  // The TypeBox schemas of src/protocol/, in declaration order.
  const modules: Array<[string, Record<string, unknown>]> = [
    ['src/protocol/message.ts', message],
    ['src/protocol/frames.ts', frames],
  ];
  const schemas: Array<[string, Schema]> = [];
  for (const [file, mod] of modules) {
    for (const name of exportOrder(file)) {
      const value = mod[name];
      if (isSchema(value)) schemas.push([name, value]);
    }
  }
  const http: Array<[string, Schema, string]> = [];
  const document = await openApi();
  for (const [name, keys, description] of HTTP_TYPES)
    http.push([name, at(document, keys), description]);

  for (const [name, schema] of schemas) r.name(name, schema);
  for (const [name, schema] of http) r.name(name, schema);

  const declare = (name: string, schema: Schema, description?: unknown) => {
    out.push('');
    out.push(doc(description ?? schema.description ?? schema.title).trimEnd());
    const body = r.type(schema, true, name);
    out.push(
      body.startsWith('{') ? `export interface ${name} ${body}` : `export type ${name} = ${body};`,
    );
  };
  out.push(
    '',
    '// ---- The WebSocket protocol: src/protocol/message.ts and src/protocol/frames.ts ----',
  );
  for (const [name, schema] of schemas) declare(name, schema);
  out.push('', '// ---- HTTP bodies: the OpenAPI document of src/http/ ----');
  for (const [name, schema, description] of http) declare(name, schema, description);

  const config = await prettier.resolveConfig(OUTPUT);
  return prettier.format(out.filter((l, i, a) => !(l === '' && a[i - 1] === '')).join('\n'), {
    ...config,
    filepath: OUTPUT,
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const text = await generate();
  if (process.argv.includes('--check')) {
    if (fs.readFileSync(OUTPUT, 'utf8') !== text) {
      console.error(`${path.relative(root, OUTPUT)} is stale: run npm run client:generate`);
      process.exit(1);
    }
  } else {
    fs.writeFileSync(OUTPUT, text);
  }
}
