// One load generator, three peers: a Driver opens a client connection to a peer and maps its
// protocol to the same events (ack, message, error, close). The chat server and the ws relay
// speak JSON frames over a plain WebSocket; the Socket.IO relay speaks Socket.IO events.
import WebSocket from 'ws';
import { io, type ManagerOptions, type SocketOptions } from 'socket.io-client';

/** Who a connection is for: a username, and a token when the peer wants one. */
export interface Identity {
  username: string;
  token?: string;
}

export interface Events {
  ack(clientId: unknown): void;
  message(content: unknown): void;
  error(code: string, clientId: unknown): void;
  close(): void;
}

export interface ClientConnection {
  send(receiver: string, content: string, clientId: string): void;
  /** A message to a group: `{conversationId, content, clientId}`. */
  sendToGroup(conversationId: string, content: string, clientId: string): void;
  /**
   * Makes this connection receive the group's messages: nothing to do for the chat server (it
   * knows the members), a `join` event for the Socket.IO relay (a room). Resolves when done.
   */
  join(conversationId: string): Promise<void>;
  close(): void;
}

export interface ConnectOptions {
  localAddress?: string;
  timeoutMs?: number;
}

export interface Driver {
  connect(who: Identity, events: Events, options?: ConnectOptions): Promise<ClientConnection>;
}

export const NO_EVENTS: Events = { ack() {}, message() {}, error() {}, close() {} };

interface Frame {
  type?: string;
  clientId?: unknown;
  content?: unknown;
  code?: unknown;
}

/**
 * A plain WebSocket peer at `url`: 'bearer' sends the token in the Authorization header (the
 * chat server), 'query' names the user with ?user= (the ws relay).
 */
export function wsDriver(url: string, auth: 'bearer' | 'query'): Driver {
  return {
    connect(who, events, options = {}) {
      const target = auth === 'query' ? `${url}?user=${encodeURIComponent(who.username)}` : url;
      const ws = new WebSocket(target, {
        headers: auth === 'bearer' ? { authorization: `Bearer ${who.token}` } : {},
        perMessageDeflate: false,
        handshakeTimeout: options.timeoutMs ?? 10_000,
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      });
      ws.on('message', (data) => {
        let frame: Frame;
        try {
          frame = JSON.parse(data.toString()) as Frame;
        } catch {
          return events.error('invalid_json_from_peer', undefined);
        }
        switch (frame.type) {
          case 'ack':
            return events.ack(frame.clientId);
          case 'message':
            return events.message(frame.content);
          case 'error':
            return events.error(String(frame.code), frame.clientId);
        }
      });
      const connection: ClientConnection = {
        send(receiver, content, clientId) {
          ws.send(JSON.stringify({ receiver, content, clientId }));
        },
        sendToGroup(conversationId, content, clientId) {
          ws.send(JSON.stringify({ conversationId, content, clientId }));
        },
        join: () => Promise.resolve(),
        close() {
          ws.terminate();
        },
      };
      return new Promise((resolve, reject) => {
        ws.once('open', () => {
          ws.on('close', () => events.close());
          resolve(connection);
        });
        ws.once('unexpected-response', (_req, res) => {
          ws.terminate();
          reject(new Error(`handshake refused: HTTP ${res.statusCode}`));
        });
        ws.once('error', (error) => {
          ws.terminate();
          reject(error);
        });
      });
    },
  };
}

interface AckReply {
  clientId?: unknown;
}

/** The Socket.IO relay at `url`: JWT in `auth.token`, WebSocket transport only, one Manager per connection. */
export function socketIoDriver(url: string): Driver {
  return {
    connect(who, events, options = {}) {
      const settings: Partial<ManagerOptions & SocketOptions> & { localAddress?: string } = {
        transports: ['websocket'],
        auth: { token: who.token },
        forceNew: true,
        reconnection: false,
        timeout: options.timeoutMs ?? 10_000,
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      };
      const socket = io(url, settings);
      socket.on('message', (frame: Frame) => events.message(frame?.content));
      const connection: ClientConnection = {
        send(receiver, content, clientId) {
          socket.emit('message', { receiver, content, clientId }, (reply: AckReply) =>
            events.ack(reply?.clientId),
          );
        },
        sendToGroup(conversationId, content, clientId) {
          socket.emit('message', { conversationId, content, clientId }, (reply: AckReply) =>
            events.ack(reply?.clientId),
          );
        },
        join(conversationId) {
          return new Promise((resolve, reject) => {
            const timer = setTimeout(
              () => reject(new Error(`join ${conversationId}: no answer`)),
              10_000,
            );
            socket.emit('join', conversationId, () => {
              clearTimeout(timer);
              resolve();
            });
          });
        },
        close() {
          socket.disconnect();
        },
      };
      return new Promise((resolve, reject) => {
        socket.once('connect', () => {
          socket.on('disconnect', () => events.close());
          resolve(connection);
        });
        socket.once('connect_error', (error) => {
          socket.disconnect();
          reject(error);
        });
      });
    },
  };
}
