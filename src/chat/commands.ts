/**
 * The chat app's replicated commands: what goes through the Raft log. Every command that acts for a user
 * names the session by the SHA-256 of its bearer token (never the token, never a password); registration
 * carries the scrypt hash and salt computed on the leader. `time` is the proposing leader's clock, so every
 * replica applies a command with the same notion of "now" (token expiry, message times).
 */
import { pack, unpack } from '../util/msgpack.js';

export type ChatCommand =
  | {
      readonly t: 'register';
      readonly user: string;
      readonly salt: Uint8Array;
      readonly hash: Uint8Array;
      readonly time: number;
    }
  | {
      readonly t: 'login';
      readonly user: string;
      /** SHA-256 of the bearer token (hex). */
      readonly session: string;
      readonly time: number;
      readonly expires: number;
    }
  | { readonly t: 'logout'; readonly session: string; readonly time: number }
  | { readonly t: 'create-room'; readonly session: string; readonly room: string; readonly time: number }
  | { readonly t: 'join'; readonly session: string; readonly room: string; readonly time: number }
  | {
      readonly t: 'post';
      readonly session: string;
      readonly room: string;
      readonly text: string;
      /** The client's id for this post: a retry with the same id applies once. */
      readonly rid?: string;
      readonly time: number;
    };

/** What applying a command gives: the HTTP answer every replica would render for it. */
export interface ChatResult {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** A committed chat message as every node stores and serves it. */
export interface ChatMessage {
  readonly room: string;
  readonly seq: number;
  readonly user: string;
  readonly text: string;
  readonly time: number;
}

const FORMAT = 1;

export function encodeChatCommand(cmd: ChatCommand): Uint8Array {
  return pack([FORMAT, cmd]);
}

export class InvalidChatCommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidChatCommandError';
  }
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Decodes and validates a log entry's bytes; throws InvalidChatCommandError for anything else. */
export function decodeChatCommand(data: Uint8Array): ChatCommand {
  let raw: unknown;
  try {
    raw = unpack(data);
  } catch (err) {
    throw new InvalidChatCommandError(`undecodable entry: ${(err as Error).message}`);
  }
  if (!Array.isArray(raw) || raw[0] !== FORMAT || raw[1] === null || typeof raw[1] !== 'object') {
    throw new InvalidChatCommandError('not a chat command');
  }
  const c = raw[1] as Record<string, unknown>;
  if (!isNumber(c.time)) throw new InvalidChatCommandError('command without a time');
  switch (c.t) {
    case 'register':
      if (isString(c.user) && c.salt instanceof Uint8Array && c.hash instanceof Uint8Array) {
        return { t: 'register', user: c.user, salt: c.salt, hash: c.hash, time: c.time };
      }
      break;
    case 'login':
      if (isString(c.user) && isString(c.session) && isNumber(c.expires)) {
        return { t: 'login', user: c.user, session: c.session, time: c.time, expires: c.expires };
      }
      break;
    case 'logout':
      if (isString(c.session)) return { t: 'logout', session: c.session, time: c.time };
      break;
    case 'create-room':
    case 'join':
      if (isString(c.session) && isString(c.room)) return { t: c.t, session: c.session, room: c.room, time: c.time };
      break;
    case 'post':
      if (isString(c.session) && isString(c.room) && isString(c.text) && (c.rid === undefined || isString(c.rid))) {
        const base = { t: 'post' as const, session: c.session, room: c.room, text: c.text, time: c.time };
        return c.rid === undefined ? base : { ...base, rid: c.rid };
      }
      break;
  }
  throw new InvalidChatCommandError(`malformed chat command ${JSON.stringify(c.t)}`);
}
