// The AsyncAPI 3 document of the WebSocket, generated from the frame unions that validate and
// type the frames (frames.ts) and from the error catalogue's close codes. Served at /asyncapi.json.
import type { TObject } from 'typebox';
import { CLOSE_ERRORS, ERRORS } from '../errors.js';
import { ClientFrame, ServerFrame } from './frames.js';

/** Frames by name (their title), in union order. */
type Frame = TObject & { title: string; description?: string };
const byName = (union: { anyOf: readonly TObject[] }) =>
  Object.fromEntries((union.anyOf as readonly Frame[]).map((schema) => [schema.title, schema]));
const clientFrames = byName(ClientFrame);
const serverFrames = byName(ServerFrame);

/** The close codes the server sends, with their reasons and meaning, from the catalogue. */
export const closeCodes = () =>
  CLOSE_ERRORS.map((key) => ({
    code: ERRORS[key].close,
    reason: key,
    description: ERRORS[key].message,
  }));

const refs = (names: string[]) => names.map((n) => ({ $ref: `#/channels/chat/messages/${n}` }));

export function asyncApiDocument(): Record<string, unknown> {
  const messages = Object.fromEntries(
    Object.entries({ ...clientFrames, ...serverFrames }).map(([name, schema]) => {
      const { title, description } = schema;
      return [
        name,
        {
          name,
          title: title ?? name,
          summary: description,
          contentType: 'application/json',
          payload: schema,
        },
      ];
    }),
  );
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Chat server WebSocket',
      version: '0.1.0',
      'x-close-codes': closeCodes(),
      description:
        'JSON text frames at /websocket. Authenticate the handshake with `Authorization: Bearer`, `?ticket=` or `?token=`; add `?after=<id>` to replay missed messages. Close codes and client behaviour: docs/protocol.md.',
    },
    servers: {
      local: { host: 'localhost:3000', protocol: 'ws', pathname: '/websocket' },
    },
    channels: {
      chat: {
        address: '/websocket',
        messages,
        bindings: {
          ws: {
            query: {
              type: 'object',
              properties: {
                ticket: {
                  type: 'string',
                  description: 'Single-use ticket from POST /websocket/ticket',
                },
                token: { type: 'string', description: 'Access token (redacted from logs)' },
                after: { type: 'string', description: 'Replay the stream after this message id' },
              },
            },
          },
        },
      },
    },
    operations: {
      sendToServer: {
        action: 'receive',
        channel: { $ref: '#/channels/chat' },
        messages: refs(Object.keys(clientFrames)),
      },
      sendToClient: {
        action: 'send',
        channel: { $ref: '#/channels/chat' },
        messages: refs(Object.keys(serverFrames)),
      },
    },
  };
}
