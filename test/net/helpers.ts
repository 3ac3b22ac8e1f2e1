import { freeNodePort } from '../../src/net/ports.js';
import type { Message, MessageType } from '../../src/raft/types.js';

/** A port that was free a moment ago on 127.0.0.1, outside the ephemeral range. */
export { freeNodePort as freePort };

/** Polls `cond` every few ms until it holds, failing after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function msg(type: MessageType, from: number, to: number, extra: Partial<Message> = {}): Message {
  return { type, from, to, term: 3, logTerm: 2, index: 10, commit: 9, ...extra };
}

/** Byte fields as plain arrays, so Buffer and Uint8Array compare equal. */
export function norm(v: unknown): unknown {
  if (v instanceof Uint8Array) return { bytes: Array.from(v) };
  if (Array.isArray(v)) return v.map(norm);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x)]));
  }
  return v;
}
