// The AsyncAPI 3 document of the WebSocket, generated from the same TypeBox schemas that
// validate the frames (frames.ts). Served at /asyncapi.json.
import {
  AckFrame,
  ErrorFrame,
  MessageFrame,
  PingFrame,
  PongFrame,
  SendFrame,
  SyncedFrame,
  SyncFrame,
} from './frames.js';

const clientFrames = { send: SendFrame, sync: SyncFrame, ping: PingFrame };
const serverFrames = {
  ack: AckFrame,
  message: MessageFrame,
  synced: SyncedFrame,
  pong: PongFrame,
  error: ErrorFrame,
};

const refs = (names: string[]) => names.map((n) => ({ $ref: `#/channels/chat/messages/${n}` }));

export function asyncApiDocument(): Record<string, unknown> {
  const messages = Object.fromEntries(
    Object.entries({ ...clientFrames, ...serverFrames }).map(([name, schema]) => {
      const { title, description } = schema as { title?: string; description?: string };
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
