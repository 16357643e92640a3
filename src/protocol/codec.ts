// The two ends of the wire: `decodeClientFrame` turns a WebSocket frame into a validated, typed
// client frame (or the error frame to answer with), and `encodeFrame` is the one way a server
// frame becomes text. Both follow frames.ts: a new frame type needs no change here.
import { Compile, type Validator } from 'typebox/compile';
import type { TObject } from 'typebox';
import { ClientFrame, type ErrorCode, type ServerFrame } from './frames.js';
import { CONTENT_MAX } from './message.js';
import { malformedTextAt, NOT_WELL_FORMED } from './text.js';

type ClientSchemas = (typeof ClientFrame)['anyOf'][number];

/** The `type` of every client frame (a frame without one is a `message`). */
export type ClientFrameType = NonNullable<ClientFrame['type']>;

/** A client frame of a given type, with `type` filled in. */
export type ClientFrameOf<T extends ClientFrameType> = Extract<ClientFrame, { type?: T }> & {
  type: T;
};

export type Decoded =
  | { ok: true; frame: { [T in ClientFrameType]: ClientFrameOf<T> }[ClientFrameType] }
  | { ok: false; code: ErrorCode; message: string; clientId?: string };

const DEFAULT_TYPE = 'message';

/** One compiled validator per frame type, keyed by the literal of its `type` property. */
const validators = new Map<string, Validator<Record<string, never>, ClientSchemas>>(
  (ClientFrame.anyOf as readonly TObject[]).map((schema) => {
    const literal = (schema.properties.type as { const?: string }).const;
    if (literal === undefined) throw new Error('every client frame needs a literal `type`');
    return [literal, Compile(schema as ClientSchemas)];
  }),
);

const TYPES = [...validators.keys()].map((t) => `"${t}"`);
const TYPE_LIST = `${TYPES.slice(0, -1).join(', ')} or ${TYPES.at(-1)}`;

/** Parses and validates one WebSocket frame from a client: its bytes as ws gives them, or its text. */
export function decodeClientFrame(data: Buffer | string, isBinary: boolean): Decoded {
  if (isBinary) return refuse('invalid_message', 'Binary frames are not accepted; send JSON text');
  const text = data.toString();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return refuse('invalid_json', 'The frame is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return refuse('invalid_message', 'A frame must be a JSON object');
  }
  const f = parsed as Record<string, unknown>;
  // A text frame from ws is valid UTF-8 (ws checks it), so only a `\u` escape can make a lone
  // surrogate: frames without one skip the walk. A clientId that is not well-formed is not echoed.
  const escaped = text.includes('\\u') || (typeof data === 'string' && !text.isWellFormed());
  const clientId =
    typeof f.clientId === 'string' && (!escaped || f.clientId.isWellFormed())
      ? f.clientId
      : undefined;
  if (escaped) {
    const at = malformedTextAt(f);
    if (at !== undefined) return refuse('invalid_message', `${at}: ${NOT_WELL_FORMED}`, clientId);
  }
  const type = f.type ?? DEFAULT_TYPE;
  const validator = typeof type === 'string' ? validators.get(type) : undefined;
  if (!validator) return refuse('invalid_message', `type must be ${TYPE_LIST}`, clientId);
  if (!validator.Check(f)) {
    const first = validator.Errors(f)[0];
    const where = first?.instancePath ? first.instancePath.slice(1) : 'frame';
    return refuse('invalid_message', `${where}: ${first?.message ?? 'invalid'}`, clientId);
  }
  // JSON Schema counts UTF-16 units, which bound the code points from above: count only when
  // the bound could be exceeded.
  const content = (f as { content?: unknown }).content;
  if (typeof content === 'string' && content.length > CONTENT_MAX) {
    if ([...content].length > CONTENT_MAX)
      return refuse('invalid_message', `content must be 1 to ${CONTENT_MAX} characters`, clientId);
  }
  (f as { type?: unknown }).type = type;
  return { ok: true, frame: f as Extract<Decoded, { ok: true }>['frame'] };
}

function refuse(code: ErrorCode, message: string, clientId?: string): Decoded {
  return clientId === undefined
    ? { ok: false, code, message }
    : { ok: false, code, message, clientId };
}

/** Serialises a server frame: the only place a frame becomes text. */
export function encodeFrame(frame: ServerFrame): string {
  return JSON.stringify(frame);
}
