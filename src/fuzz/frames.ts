/**
 * Fuzzed frames against a raft node's peer port (src/net/codec.ts, handshake.ts, transport.ts).
 *
 * Before the handshake: random bytes, oversized and small length prefixes, truncated and mutated hellos
 * (kind, version, ids, MACs for another challenge or secret, trailing or missing bytes), other frames first,
 * HTTP and TLS bytes on the peer port, nothing at all. After a *valid* handshake (with the cluster secret,
 * as a node that is not a member or as another member): random bytes, oversized or truncated frames,
 * message frames with unknown types and flags, impossible terms and indexes (NaN, negative, fractional,
 * beyond 2^53), bad entry and snapshot lengths, trailing bytes, handshake frames again, messages claiming
 * to come from another node — and well-formed messages the Raft core must ignore (from a node that is not a
 * member, or addressed to another node), followed by garbage.
 *
 * A well-formed message from a member addressed to the node is never sent: a holder of the secret is a
 * trusted peer, and such a message is ordinary Raft traffic. The codec is used as the oracle that keeps
 * them out (a mutation that happens to decode is drawn again), and to tell which cases must make the node
 * close the connection at once (a complete frame that cannot be accepted).
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import {
  FrameDecoder,
  KIND_CHALLENGE,
  KIND_HELLO,
  KIND_MESSAGE,
  KIND_WELCOME,
  MAX_HANDSHAKE_BYTES,
  PROTOCOL_VERSION,
  decodeFrameBody,
  encodeChallengeBody,
  encodeHelloBody,
  encodeMessageBody,
  encodeWelcomeBody,
  joinFrames,
} from '../net/codec.js';
import { checkWelcome, helloMac } from '../net/handshake.js';
import type { PeerKeys } from '../net/peer-auth.js';
import { MESSAGE_TYPES, type Entry, type Message } from '../raft/types.js';
import { Rng } from './rng.js';

/** Largest message frame a node accepts (transport default). */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Ids that no member has: connections authenticated as them carry messages the core ignores. */
export const NON_MEMBER_IDS = [4, 7, 77, 1000, 0xffffffff];

export interface FrameTarget {
  /** The node's id. */
  readonly self: number;
  /** Every member's id. */
  readonly members: readonly number[];
}

export interface FrameCase {
  readonly index: number;
  /** Index of the node (in the cluster's id order). */
  readonly node: number;
  readonly label: string;
  /** Authenticate as this id first (a valid handshake with the cluster secret). */
  readonly handshakeAs?: number;
  /** Wait for the node's challenge before writing (so hellos can be built on it). */
  readonly needsChallenge: boolean;
  /** The writes, built once the challenge (if any) is known. */
  build(challenge: Buffer | undefined, keys: PeerKeys): Buffer[];
  readonly gapsMs: readonly number[];
}

const u32be = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
};

function frame(body: Buffer): Buffer {
  return joinFrames([body]);
}

function randomMessage(rng: Rng, from: number, to: number): Message {
  const nat = () =>
    rng.weighted<() => number>([
      [5, () => rng.int(0, 100)],
      [2, () => rng.int(0, 0x7fffffff)],
      [1, () => Number.MAX_SAFE_INTEGER],
    ])();
  const m: Message = {
    type: rng.pick(MESSAGE_TYPES),
    from,
    to,
    term: nat(),
    logTerm: nat(),
    index: nat(),
    commit: nat(),
  };
  if (rng.bool(0.3)) m.reject = rng.bool();
  if (rng.bool(0.2)) m.rejectHint = nat();
  if (rng.bool(0.2)) m.context = nat();
  if (rng.bool(0.4)) {
    m.entries = Array.from({ length: rng.size(0, 8) }, (): Entry => ({
      index: nat(),
      term: nat(),
      type: rng.bool(0.8) ? 'normal' : 'noop',
      data: rng.bytes(rng.size(0, 2048)),
    }));
  }
  if (rng.bool(0.1)) {
    m.snapshot = {
      metadata: { index: nat(), term: nat(), peers: Array.from({ length: rng.int(0, 5) }, () => rng.int(0, 10)) },
      offset: nat(),
      totalSize: nat(),
      data: rng.bytes(rng.size(0, 4096)),
    };
  }
  return m;
}

const BAD_DOUBLES = [NaN, -1, 1.5, 2 ** 53, Infinity, -Infinity, 1e300, -0.5, Number.MIN_VALUE];

/** Damage to an encoded message body (offsets from codec.ts: kind, type, flags, from, to, 4 doubles). */
function damageMessage(body: Buffer, rng: Rng, as: number, others: readonly number[]): [Buffer, string] {
  const b = Buffer.from(body);
  switch (rng.int(0, 9)) {
    case 0:
      b[1] = rng.int(MESSAGE_TYPES.length, 255);
      return [b, 'unknown type'];
    case 1:
      b[2] = rng.pick([64, 128, 255, 2, 2 | 64]);
      return [b, 'bad flags'];
    case 2:
      return [b.subarray(0, rng.int(1, b.length - 1)), 'truncated body'];
    case 3:
      return [Buffer.concat([b, rng.bytes(rng.int(1, 64))]), 'trailing bytes'];
    case 4:
      b.writeDoubleLE(rng.pick(BAD_DOUBLES), 11 + 8 * rng.int(0, 3));
      return [b, 'impossible term or index'];
    case 5:
      b.writeUInt32LE(rng.pick(others.filter((o) => o !== as).concat([0, as + 1])) >>> 0, 3);
      return [b, 'claims another sender'];
    case 6:
      b[0] = rng.pick([KIND_HELLO, KIND_CHALLENGE, KIND_WELCOME, 4, 9, 255]);
      return [b, 'wrong frame kind'];
    case 7: {
      // Entries flag with a huge count and nothing behind it.
      const head = Buffer.from(b.subarray(0, 43));
      head[2] = 16;
      return [
        Buffer.concat([head, u32be(0xffffffff).reverse(), rng.bytes(rng.int(0, 40))]),
        'entry count beyond the frame',
      ];
    }
    case 8: {
      const head = Buffer.from(b.subarray(0, 43));
      head[2] = 16;
      const entry = Buffer.alloc(8 + 8 + 1 + 4);
      entry.writeDoubleLE(rng.pick([1, NaN, -1]), 0);
      entry.writeDoubleLE(1, 8);
      entry[16] = rng.pick([0, 1, 2, 255]);
      entry.writeUInt32LE(rng.pick([0xffffffff, 1 << 30, 100]), 17);
      const count = Buffer.alloc(4);
      count.writeUInt32LE(1, 0);
      return [Buffer.concat([head, count, entry, rng.bytes(rng.int(0, 20))]), 'bad entry'];
    }
    default: {
      const head = Buffer.from(b.subarray(0, 43));
      head[2] = 32;
      const snap = Buffer.alloc(8 + 8 + 4);
      snap.writeDoubleLE(1, 0);
      snap.writeDoubleLE(1, 8);
      snap.writeUInt32LE(rng.pick([4097, 0xffffffff, 3]), 16);
      return [Buffer.concat([head, snap, rng.bytes(rng.int(0, 64))]), 'bad snapshot chunk'];
    }
  }
}

function helloBody(from: number, to: number, nonce: Buffer, mac: Buffer): Buffer {
  const b = Buffer.alloc(2 + 4 + 4 + 32 + 32);
  b[0] = KIND_HELLO;
  b[1] = PROTOCOL_VERSION;
  b.writeUInt32LE(from >>> 0, 2);
  b.writeUInt32LE(to >>> 0, 6);
  nonce.copy(b, 10);
  mac.copy(b, 42);
  return b;
}

/** A hello that cannot be accepted on this connection. */
function badHello(rng: Rng, t: FrameTarget, challenge: Buffer, keys: PeerKeys): [Buffer, string] {
  const nonce = rng.bytes(32);
  const from = rng.pick(t.members.filter((m) => m !== t.self));
  const macFor = (f: number, to: number, c: Buffer) => helloMac(keys, f, to, c, nonce);
  switch (rng.int(0, 9)) {
    case 0:
      return [helloBody(from, t.self, nonce, rng.bytes(32)), 'random MAC'];
    case 1:
      return [helloBody(from, t.self, nonce, Buffer.alloc(32)), 'zero MAC'];
    case 2:
      return [helloBody(from, t.self, nonce, macFor(from, t.self, rng.bytes(32))), 'MAC for another challenge'];
    case 3:
      return [
        helloBody(
          from,
          rng.pick(t.members.filter((m) => m !== t.self).concat([0, 99])),
          nonce,
          macFor(from, t.self, challenge),
        ),
        'addressed to another node',
      ];
    case 4:
      return [helloBody(rng.pick([0, t.self]), t.self, nonce, macFor(t.self, t.self, challenge)), 'bad sender id'];
    case 5: {
      const b = helloBody(from, t.self, nonce, macFor(from, t.self, challenge));
      b[1] = rng.pick([0, 1, 2, 4, 255]);
      return [b, 'other protocol version'];
    }
    case 6: {
      const b = helloBody(from, t.self, nonce, macFor(from, t.self, challenge));
      return [Buffer.concat([b, rng.bytes(rng.int(1, MAX_HANDSHAKE_BYTES - b.length))]), 'trailing bytes'];
    }
    case 7: {
      const b = helloBody(from, t.self, nonce, macFor(from, t.self, challenge));
      return [b.subarray(0, rng.int(1, b.length - 1)), 'short hello'];
    }
    case 8: {
      // The MAC made with a secret the cluster does not hold.
      const mac = helloMac(undefined, from, t.self, challenge, nonce);
      mac.set(rng.bytes(32));
      return [helloBody(from, t.self, nonce, mac), 'wrong secret'];
    }
    default: {
      const b = helloBody(from, t.self, nonce, macFor(from, t.self, challenge));
      b[0] = rng.pick([KIND_MESSAGE, KIND_CHALLENGE, KIND_WELCOME, 7, 255]);
      return [b, 'wrong kind'];
    }
  }
}

/** Case `index` of the frame stream (structure deterministic in seed and index; challenges are the node's). */
export function generateFrameCase(
  seed: number,
  stream: string,
  index: number,
  targets: readonly FrameTarget[],
): FrameCase {
  const rng = new Rng(seed, stream, index);
  const node = rng.int(0, targets.length - 1);
  const t = targets[node] as FrameTarget;
  const others = t.members.filter((m) => m !== t.self);
  const gaps = (n: number) => Array.from({ length: n }, () => (rng.bool(0.1) ? rng.int(1, 20) : 0));
  const pre = (label: string, bytes: () => Buffer[], needsChallenge = false): FrameCase => {
    const fixed = needsChallenge ? undefined : bytes();
    const sub = rng.fork('pre');
    return {
      index,
      node,
      label: `pre-handshake: ${label}`,
      needsChallenge,
      build: needsChallenge ? (c, keys) => buildHello(sub, t, c as Buffer, keys) : () => fixed as Buffer[],
      gapsMs: gaps(4),
    };
  };
  if (rng.bool(0.45)) {
    switch (rng.int(0, 11)) {
      case 0:
        return pre('random bytes', () => [rng.bytes(rng.size(1, 2048))]);
      case 1:
        return pre('oversized length', () => [
          u32be(rng.int(MAX_HANDSHAKE_BYTES + 1, 0xffffffff)),
          rng.bytes(rng.int(0, 64)),
        ]);
      case 2: {
        const n = rng.int(0, MAX_HANDSHAKE_BYTES);
        return pre('small frame of garbage', () => [frame(rng.bytes(n))]);
      }
      case 3: {
        const h = encodeHelloBody({ from: rng.pick(others), to: t.self, nonce: rng.bytes(32), mac: rng.bytes(32) });
        const f = frame(h);
        return pre('truncated hello', () => [f.subarray(0, rng.int(1, f.length - 1))]);
      }
      case 4:
      case 5:
      case 6:
        return pre('bad hello', () => [], true);
      case 7:
        return pre('another frame first', () => [
          frame(
            rng.pick([
              () => encodeChallengeBody(rng.bytes(32)),
              () => encodeWelcomeBody(rng.bytes(32)),
              () => encodeMessageBody(randomMessage(rng, rng.pick(others), t.self)).subarray(0, MAX_HANDSHAKE_BYTES),
            ])(),
          ),
        ]);
      case 8:
        return pre('empty frames', () => [Buffer.concat(Array.from({ length: rng.int(1, 5) }, () => u32be(0)))]);
      case 9:
        return pre('HTTP or TLS on the peer port', () => [
          Buffer.from(
            rng.pick([
              'GET / HTTP/1.1\r\nhost: x\r\n\r\n',
              'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
              '\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u0001\u00fc\u0003\u0003',
              'SSH-2.0-OpenSSH\r\n',
            ]),
            'latin1',
          ),
        ]);
      case 10:
        return pre('nothing', () => []);
      default: {
        const body = encodeHelloBody({ from: rng.pick(others), to: t.self, nonce: rng.bytes(32), mac: rng.bytes(32) });
        const f = Buffer.concat([frame(body), frame(body)]);
        const cuts = [rng.int(1, 20), rng.int(21, f.length - 1)];
        return pre('slow hellos', () => [f.subarray(0, cuts[0]), f.subarray(cuts[0], cuts[1]), f.subarray(cuts[1])]);
      }
    }
  }
  // After a valid handshake.
  const as = rng.bool(0.6) ? rng.pick(NON_MEMBER_IDS) : rng.pick(others);
  const member = t.members.includes(as);
  const sub = rng.fork('post');
  const kind = rng.int(0, 9);
  const labels = [
    'random bytes',
    'oversized length',
    'truncated frame',
    'random message body',
    'damaged message',
    'damaged message',
    'handshake frame again',
    'ignored messages then garbage',
    'ignored messages',
    'damaged message',
  ];
  return {
    index,
    node,
    label: `after handshake as ${member ? 'member' : 'non-member'} ${as}: ${labels[kind] as string}`,
    handshakeAs: as,
    needsChallenge: true,
    build: () => buildPost(sub, kind, t, as, member),
    gapsMs: gaps(4),
  };
}

function buildHello(rng: Rng, t: FrameTarget, challenge: Buffer, keys: PeerKeys): Buffer[] {
  const [body] = badHello(rng, t, challenge, keys);
  const f = frame(body);
  return rng.bool(0.2) ? [f, rng.bytes(rng.int(1, 64))] : [f];
}

/** A message the core ignores: from a non-member, or addressed to another node. */
function ignoredMessage(rng: Rng, t: FrameTarget, as: number, member: boolean): Buffer {
  const to = member
    ? rng.pick([0, 99, ...t.members.filter((m) => m !== t.self)])
    : rng.bool(0.7)
      ? t.self
      : rng.int(0, 50);
  return frame(encodeMessageBody(randomMessage(rng, as, to)));
}

/** A complete frame the node cannot accept on a connection authenticated as `as` (checked with the codec). */
function badMessageFrame(rng: Rng, t: FrameTarget, as: number, member: boolean): Buffer {
  for (let i = 0; i < 20; i++) {
    const base = encodeMessageBody(randomMessage(rng, as, t.self));
    const [body] = damageMessage(base, rng, as, t.members);
    if (!acceptable(body, t, as, member)) return frame(body);
  }
  return frame(Buffer.from([KIND_MESSAGE, 255]));
}

/** Whether the node would accept this body on the connection (decodes as a message from `as`). */
function acceptable(body: Buffer, t: FrameTarget, as: number, member: boolean): boolean {
  try {
    const f = decodeFrameBody(body);
    if (f.kind !== 'message' || f.message.from !== as) return false;
    // Accepted; from a member addressed to us it would reach the core: never sent.
    if (member && f.message.to === t.self) throw new Error('deliverable');
    return true;
  } catch (err) {
    if ((err as Error).message === 'deliverable') return true;
    return false;
  }
}

function buildPost(rng: Rng, kind: number, t: FrameTarget, as: number, member: boolean): Buffer[] {
  switch (kind) {
    case 0:
      return [rng.bytes(rng.size(1, 4096))];
    case 1:
      return [u32be(rng.int(MAX_MESSAGE_BYTES + 1, 0xffffffff)), rng.bytes(rng.int(0, 64))];
    case 2: {
      const f = ignoredMessage(rng, t, as, member);
      const n = rng.int(43, 1 << 20);
      return [u32be(n), f.subarray(4, 4 + Math.min(n - 1, f.length - 4, rng.int(0, 60)))];
    }
    case 3: {
      const n = rng.size(1, 4096);
      const body = Buffer.concat([Buffer.from([KIND_MESSAGE]), rng.bytes(n)]);
      return [frame(acceptable(body, t, as, member) ? Buffer.from([KIND_MESSAGE, 255]) : body)];
    }
    case 4:
    case 5:
    case 9:
      return [badMessageFrame(rng, t, as, member)];
    case 6:
      return [
        frame(
          rng.pick([
            () => encodeHelloBody({ from: as, to: t.self, nonce: rng.bytes(32), mac: rng.bytes(32) }),
            () => encodeChallengeBody(rng.bytes(32)),
            () => encodeWelcomeBody(rng.bytes(32)),
          ])(),
        ),
      ];
    case 7: {
      const n = rng.int(1, 5);
      return [
        Buffer.concat([
          ...Array.from({ length: n }, () => ignoredMessage(rng, t, as, member)),
          badMessageFrame(rng, t, as, member),
        ]),
      ];
    }
    default:
      return Array.from({ length: rng.int(1, 5) }, () => ignoredMessage(rng, t, as, member));
  }
}

/**
 * Whether these bytes, sent on a connection (authenticated as `as`, or not), hold a complete frame the node
 * cannot accept — in which case it must close the connection without waiting for more.
 */
export function mustClose(bytes: Buffer, t: FrameTarget, as: number | undefined): boolean {
  const member = as !== undefined && t.members.includes(as);
  const d = new FrameDecoder(as === undefined ? MAX_HANDSHAKE_BYTES : MAX_MESSAGE_BYTES);
  let bodies: Buffer[];
  try {
    bodies = d.push(bytes);
  } catch {
    return true;
  }
  for (const body of bodies) {
    // Before the handshake nothing but a hello with a MAC over this connection's challenge is accepted, and
    // the cases never build one; after it, only messages from the authenticated sender.
    if (as === undefined) return true;
    if (!acceptable(body, t, as, member)) return true;
  }
  return false;
}

export interface FrameOutcome {
  /** `refused`: the node closed the connection by itself; `ended`: it closed once we half-closed. */
  readonly ended: 'refused' | 'ended' | 'timeout' | 'error';
  /** The valid handshake, when there was one, was welcomed. */
  readonly welcomed: boolean | undefined;
  /** A complete frame it cannot accept was written and the connection stayed open. */
  readonly keptOpen: boolean;
  readonly error?: string;
  readonly ms: number;
}

/** Runs one case against `port`: the handshake if asked, the writes, then waits for the node to close. */
export async function sendFrameCase(
  port: number,
  c: FrameCase,
  t: FrameTarget,
  keys: PeerKeys,
  timeoutMs: number,
): Promise<FrameOutcome> {
  const t0 = Date.now();
  const s = net.connect(port, '127.0.0.1');
  s.setNoDelay(true);
  let error: string | undefined;
  s.on('error', (e: NodeJS.ErrnoException) => {
    error = e.code ?? e.message;
  });
  let closed = false;
  const closedP = new Promise<void>((resolve) =>
    s.on('close', () => {
      closed = true;
      resolve();
    }),
  );
  const decoder = new FrameDecoder(1 << 16);
  const frames: Buffer[] = [];
  let wake: (() => void) | undefined;
  s.on('data', (d: Buffer) => {
    try {
      frames.push(...decoder.push(d));
    } catch {
      s.destroy();
    }
    wake?.();
  });
  const nextFrame = async (ms: number): Promise<Buffer | undefined> => {
    const deadline = Date.now() + ms;
    while (frames.length === 0 && !closed && Date.now() < deadline) {
      await Promise.race([
        closedP,
        new Promise<void>((r) => {
          wake = r;
          setTimeout(r, Math.max(1, deadline - Date.now()));
        }),
      ]);
    }
    return frames.shift();
  };
  const connected = await new Promise<boolean>((resolve) => {
    s.once('connect', () => resolve(true));
    s.once('error', () => resolve(false));
  });
  if (!connected)
    return {
      ended: 'error',
      welcomed: undefined,
      keptOpen: false,
      error: error ?? 'connect failed',
      ms: Date.now() - t0,
    };
  let challenge: Buffer | undefined;
  let welcomed: boolean | undefined;
  if (c.needsChallenge) {
    const f = await nextFrame(timeoutMs);
    const decoded = f === undefined ? undefined : decodeFrameBody(f);
    if (decoded?.kind !== 'challenge') {
      s.destroy();
      return { ended: 'error', welcomed: undefined, keptOpen: false, error: 'no challenge', ms: Date.now() - t0 };
    }
    challenge = Buffer.from(decoded.nonce);
  }
  if (c.handshakeAs !== undefined && challenge !== undefined) {
    const nonce = randomBytes(32);
    const mac = helloMac(keys, c.handshakeAs, t.self, challenge, nonce);
    s.write(frame(encodeHelloBody({ from: c.handshakeAs, to: t.self, nonce, mac })));
    const f = await nextFrame(timeoutMs);
    const decoded = f === undefined ? undefined : decodeFrameBody(f);
    welcomed = decoded?.kind === 'welcome' && checkWelcome(keys, c.handshakeAs, t.self, challenge, nonce, decoded.mac);
    if (!welcomed) {
      const why = closed ? 'handshake refused' : decoded === undefined ? 'no welcome in time' : 'wrong welcome';
      s.destroy();
      return { ended: 'error', welcomed: false, keptOpen: false, error: why, ms: Date.now() - t0 };
    }
  }
  const writes = c.build(challenge, keys);
  for (let i = 0; i < writes.length; i++) {
    const gap = c.gapsMs[i] ?? 0;
    if (i > 0 && gap > 0) await new Promise((r) => setTimeout(r, gap));
    if (!s.destroyed) s.write(writes[i] as Buffer);
  }
  const expectClose = mustClose(Buffer.concat(writes), t, c.handshakeAs);
  let keptOpen = false;
  if (expectClose) {
    // The node must close by itself; give it time on a loaded machine.
    const refused = await Promise.race([
      closedP.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs)),
    ]);
    if (!refused) keptOpen = true;
  }
  if (!closed) s.end();
  const done = await Promise.race([
    closedP.then(() => true),
    new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs)),
  ]);
  if (!done) s.destroy();
  return {
    ended: !done ? 'timeout' : expectClose && !keptOpen ? 'refused' : 'ended',
    welcomed,
    keptOpen,
    ...(error === undefined ? {} : { error }),
    ms: Date.now() - t0,
  };
}
