import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { FrameDecoder, decodeFrameBody, encodeHelloBody, joinFrames, type Frame } from '../../src/net/codec.js';
import { helloMac } from '../../src/net/handshake.js';
import type { PeerKeys } from '../../src/net/peer-auth.js';
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

/**
 * A hand-driven client of a transport's port, for hostile-peer tests: reads the frames the transport sends,
 * writes whatever the test wants, and reports when the transport closes the connection.
 */
export interface RawPeer {
  /** The next frame the transport sent (rejects if the connection closes first). */
  next(): Promise<Frame>;
  write(bodies: readonly Buffer[]): void;
  writeRaw(bytes: Buffer): void;
  /** Resolves when the transport has closed the connection. */
  readonly closed: Promise<void>;
  isClosed(): boolean;
  destroy(): void;
}

export async function rawPeer(port: number): Promise<RawPeer> {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  const decoder = new FrameDecoder(1 << 20);
  const frames: Frame[] = [];
  const waiters: { resolve: (f: Frame) => void; reject: (e: Error) => void }[] = [];
  let isClosed = false;
  s.on('data', (chunk: Buffer) => {
    for (const body of decoder.push(chunk)) {
      const f = decodeFrameBody(body);
      const w = waiters.shift();
      if (w) w.resolve(f);
      else frames.push(f);
    }
  });
  const closed = new Promise<void>((resolve) =>
    s.on('close', () => {
      isClosed = true;
      for (const w of waiters.splice(0)) w.reject(new Error('connection closed'));
      resolve();
    }),
  );
  return {
    next: () => {
      const f = frames.shift();
      if (f !== undefined) return Promise.resolve(f);
      if (isClosed) return Promise.reject(new Error('connection closed'));
      return new Promise<Frame>((resolve, reject) => waiters.push({ resolve, reject }));
    },
    write: (bodies) => s.write(joinFrames(bodies)),
    writeRaw: (bytes) => s.write(bytes),
    closed,
    isClosed: () => isClosed,
    destroy: () => s.destroy(),
  };
}

/**
 * Runs the dialer's side of the handshake as node `from` towards `to` with `keys` (or a chosen MAC), and
 * returns the peer and the transport's answer: its welcome, or 'closed'.
 */
export async function handshakeAs(
  port: number,
  from: number,
  to: number,
  keys: PeerKeys | undefined,
  mac?: (challenge: Buffer, nonce: Buffer) => Buffer,
): Promise<{ peer: RawPeer; answer: Frame | 'closed'; challenge: Buffer; hello: Buffer }> {
  const peer = await rawPeer(port);
  const first = await peer.next();
  assert.equal(first.kind, 'challenge');
  const challenge = Buffer.from((first as { nonce: Buffer }).nonce);
  const nonce = randomBytes(32);
  const m = mac ? mac(challenge, nonce) : helloMac(keys, from, to, challenge, nonce);
  const hello = encodeHelloBody({ from, to, nonce, mac: m });
  peer.write([hello]);
  const answer = await peer.next().catch(() => 'closed' as const);
  return { peer, answer, challenge, hello };
}
