// The library's frame and body types are the server's: client/src/protocol.ts is generated from
// the server's TypeBox schemas, error catalogue and OpenAPI document (client/scripts/generate.ts).
// This test fails when the file is stale, and `npm run typecheck` fails when a generated type
// differs from `Static<typeof Schema>` of the server's definition.
import fs from 'node:fs';
import type { Static, TSchema } from 'typebox';
import { describe, expect, it } from 'vitest';
import type * as Frames from '../../src/protocol/frames.js';
import type * as Wire from '../../src/protocol/message.js';
import type * as Http from '../../src/http/schemas.js';
import { CLOSE_ERRORS, ERRORS, FRAME_ERRORS, type FrameErrorKey } from '../../src/errors.js';
import type * as Client from '../src/protocol.js';
import { CLOSE_CODES, CONTENT_MAX } from '../src/protocol.js';
import { generate, OUTPUT } from '../scripts/generate.js';

/** True when A and B are the same type (not merely assignable). */
type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Same<Schema extends TSchema, Generated> = Equal<Static<Schema>, Generated>;

// Each line fails to compile if the generated type drifts from the server's.
export const sameTypes: Array<true> = [
  true as Same<typeof Wire.Message, Client.Message>,
  true as Same<typeof Wire.EditEvent, Client.EditEvent>,
  true as Same<typeof Wire.DeleteEvent, Client.DeleteEvent>,
  true as Same<typeof Wire.ConversationEvent, Client.ConversationEvent>,
  true as Same<typeof Wire.Role, Client.Role>,
  true as Same<typeof Frames.SendFrame, Client.SendFrame>,
  true as Same<typeof Frames.ReadFrame, Client.ReadFrame>,
  true as Same<typeof Frames.TypingFrame, Client.TypingFrame>,
  true as Same<typeof Frames.EditFrame, Client.EditFrame>,
  true as Same<typeof Frames.DeleteFrame, Client.DeleteFrame>,
  true as Same<typeof Frames.SyncFrame, Client.SyncFrame>,
  true as Same<typeof Frames.PingFrame, Client.PingFrame>,
  true as Same<typeof Frames.ClientFrame, Client.ClientFrame>,
  true as Same<typeof Frames.AckFrame, Client.AckFrame>,
  true as Same<typeof Frames.MessageFrame, Client.MessageFrame>,
  true as Same<typeof Frames.EditedFrame, Client.EditedFrame>,
  true as Same<typeof Frames.DeletedFrame, Client.DeletedFrame>,
  true as Same<typeof Frames.ConversationFrame, Client.ConversationFrame>,
  true as Same<typeof Frames.ReceiptFrame, Client.ReceiptFrame>,
  true as Same<typeof Frames.UserTypingFrame, Client.UserTypingFrame>,
  true as Same<typeof Frames.PresenceFrame, Client.PresenceFrame>,
  true as Same<typeof Frames.SyncedFrame, Client.SyncedFrame>,
  true as Same<typeof Frames.PongFrame, Client.PongFrame>,
  true as Same<typeof Frames.ErrorFrame, Client.ErrorFrame>,
  true as Same<typeof Frames.ServerFrame, Client.ServerFrame>,
  true as Same<typeof Frames.StreamFrame, Client.StreamFrame>,
  true as Equal<FrameErrorKey, Client.FrameErrorCode>,
  true as Same<typeof Http.User, Client.User>,
  true as Same<typeof Http.UserWithPresence, Client.UserWithPresence>,
  true as Same<typeof Http.TokenResponse, Client.TokenResponse>,
];

describe('client/src/protocol.ts', () => {
  it('is what the generator makes of the server’s definitions now', async () => {
    expect(fs.readFileSync(OUTPUT, 'utf8')).toBe(await generate());
  });

  it('carries the catalogue’s codes and the message limits', () => {
    expect(CLOSE_CODES).toEqual(
      Object.fromEntries(CLOSE_ERRORS.map((key) => [key, ERRORS[key].close])),
    );
    expect(FRAME_ERRORS).toContain('unknown_receiver');
    expect(CONTENT_MAX).toBe(4000);
  });
});
