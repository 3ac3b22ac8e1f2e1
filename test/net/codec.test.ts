import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CodecError,
  FrameDecoder,
  FrameTooLargeError,
  PROTOCOL_VERSION,
  decodeFrameBody,
  encodeFrame,
  encodeChallengeBody,
  encodeHelloBody,
  encodeMessageBody,
  encodeWelcomeBody,
  joinFrames,
} from '../../src/net/codec.js';
import fc from 'fast-check';
import { MESSAGE_TYPES, type EntryType, type Message, type MessageType } from '../../src/raft/types.js';
import { msg, norm } from './helpers.js';

function sample(type: MessageType, i: number): Message {
  switch (type) {
    case 'app':
      return msg(type, 1, 2, {
        entries: [
          { index: 11, term: 3, type: 'noop', data: new Uint8Array(0) },
          { index: 12, term: 3, type: 'normal', data: new Uint8Array([1, 2, 3, 255]) },
        ],
      });
    case 'app-resp':
      return msg(type, 2, 1, { reject: true, rejectHint: 7, logTerm: 1 });
    case 'snap':
      return msg(type, 1, 3, {
        snapshot: {
          metadata: { index: 100, term: 4, peers: [1, 2, 3] },
          offset: 4096,
          totalSize: 9000,
          data: new Uint8Array([9, 8, 7]),
        },
      });
    case 'heartbeat':
    case 'heartbeat-resp':
      return msg(type, 1, 2, { context: 42 + i });
    case 'vote':
      return msg(type, 3, 1, { context: 1 });
    default:
      return msg(type, 1 + (i % 3), 2, { reject: i % 2 === 0 });
  }
}

test('every message type round-trips, optional fields stay absent, bytes come back as Uint8Array', () => {
  MESSAGE_TYPES.forEach((type, i) => {
    const m = sample(type, i);
    const f = decodeFrameBody(encodeMessageBody(m));
    assert.equal(f.kind, 'message');
    if (f.kind !== 'message') return;
    assert.deepEqual(norm(f.message), norm(m));
    for (const k of ['entries', 'reject', 'rejectHint', 'context', 'snapshot'] as const) {
      assert.equal(k in f.message, k in m, `${type}: field ${k}`);
    }
    for (const e of f.message.entries ?? []) assert.ok(e.data instanceof Uint8Array);
    if (f.message.snapshot) assert.ok(f.message.snapshot.data instanceof Uint8Array);
  });
});

test('handshake frames round-trip; another protocol version is refused', () => {
  const nonce = Buffer.alloc(32, 1);
  const mac = Buffer.alloc(32, 2);
  assert.deepEqual(norm(decodeFrameBody(encodeHelloBody({ from: 7, to: 3, nonce, mac }))), {
    kind: 'hello',
    from: 7,
    to: 3,
    nonce: norm(nonce),
    mac: norm(mac),
  });
  assert.deepEqual(norm(decodeFrameBody(encodeChallengeBody(nonce))), { kind: 'challenge', nonce: norm(nonce) });
  assert.deepEqual(norm(decodeFrameBody(encodeWelcomeBody(mac))), { kind: 'welcome', mac: norm(mac) });
  const old = encodeChallengeBody(nonce);
  old[1] = PROTOCOL_VERSION - 1;
  assert.throws(() => decodeFrameBody(old), /protocol version 2 unsupported/);
  // The version-2 hello (kind, version, u32 sender) is refused too.
  assert.throws(() => decodeFrameBody(Buffer.from([0, 2, 1, 0, 0, 0])), CodecError);
  assert.throws(() => encodeHelloBody({ from: 1, to: 2, nonce: Buffer.alloc(31), mac }), CodecError);
});

test('FrameDecoder reassembles frames split at every byte boundary and joined in one chunk', () => {
  const msgs = MESSAGE_TYPES.map(sample);
  const stream = Buffer.concat(msgs.map(encodeFrame));
  // one byte at a time
  const dec = new FrameDecoder(1 << 20);
  const bodies: Buffer[] = [];
  for (let i = 0; i < stream.length; i++) bodies.push(...dec.push(stream.subarray(i, i + 1)));
  assert.equal(bodies.length, msgs.length);
  assert.equal(dec.buffered, 0);
  bodies.forEach((b, i) => {
    const f = decodeFrameBody(b);
    assert.ok(f.kind === 'message');
    assert.deepEqual(norm(f.message), norm(msgs[i] as Message));
  });
  // all at once, via joinFrames
  const dec2 = new FrameDecoder(1 << 20);
  const joined = joinFrames(msgs.map(encodeMessageBody));
  assert.deepEqual(joined, stream);
  assert.equal(dec2.push(joined).length, msgs.length);
});

test('FrameDecoder rejects a header announcing more than the limit', () => {
  const dec = new FrameDecoder(100);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(101);
  assert.throws(() => dec.push(head), FrameTooLargeError);
});

test('malformed bodies are rejected with CodecError', () => {
  const app = encodeMessageBody(
    msg('app', 1, 2, { entries: [{ index: 11, term: 3, type: 'normal', data: new Uint8Array([1, 2, 3]) }] }),
  );
  const tampered = (at: number, byte: number): Buffer => {
    const t = Buffer.from(app);
    t[at] = byte;
    return t;
  };
  const negativeTerm = Buffer.from(app);
  negativeTerm.writeDoubleLE(-1, 11);
  const fractionalIndex = Buffer.from(app);
  fractionalIndex.writeDoubleLE(1.5, 27);
  const hello = encodeHelloBody({ from: 1, to: 2, nonce: Buffer.alloc(32), mac: Buffer.alloc(32) });
  const bad: [string, Buffer][] = [
    ['empty', Buffer.alloc(0)],
    ['unknown kind', Buffer.from([0xc1])],
    ['truncated hello', hello.subarray(0, hello.length - 1)],
    ['hello with trailing bytes', Buffer.concat([hello, Buffer.from([0])])],
    ['challenge with trailing bytes', Buffer.concat([encodeChallengeBody(Buffer.alloc(32)), Buffer.from([0])])],
    ['truncated welcome', encodeWelcomeBody(Buffer.alloc(32)).subarray(0, 20)],
    ['unknown handshake kind', Buffer.from([9, PROTOCOL_VERSION])],
    ['JSON', Buffer.from(JSON.stringify({ a: 1 }))],
    ['unknown message type', tampered(1, 0xff)],
    ['unknown flags', tampered(2, 0xc0 | app[2])],
    ['reject value without reject', tampered(2, 2 | app[2])],
    ['negative term', negativeTerm],
    ['fractional index', fractionalIndex],
    ['unknown entry type', tampered(app.length - 3 - 4 - 1, 7)],
    ['entry data longer than the frame', tampered(app.length - 3 - 4, 200)],
    ['huge entry count', tampered(43, 0xff)],
    ['truncated entries', app.subarray(0, app.length - 1)],
    ['trailing bytes', Buffer.concat([app, Buffer.from([0])])],
  ];
  for (const [what, b] of bad) assert.throws(() => decodeFrameBody(b), CodecError, what);
  assert.equal(decodeFrameBody(app).kind, 'message');
});

test('property: random messages round-trip through frames split at random points', () => {
  const bytes = fc.uint8Array({ maxLength: 64 }).map((b) => new Uint8Array(b));
  const entry = fc.record({
    index: fc.nat(),
    term: fc.nat(),
    type: fc.constantFrom<EntryType>('normal', 'noop'),
    data: bytes,
  });
  const message = fc.record(
    {
      type: fc.constantFrom(...MESSAGE_TYPES),
      from: fc.integer({ min: 1, max: 9 }),
      to: fc.integer({ min: 1, max: 9 }),
      term: fc.nat(),
      logTerm: fc.nat(),
      index: fc.nat(),
      commit: fc.nat(),
      entries: fc.array(entry, { maxLength: 4 }),
      reject: fc.boolean(),
      rejectHint: fc.nat(),
      context: fc.nat(),
      snapshot: fc.record({
        metadata: fc.record({ index: fc.nat(), term: fc.nat(), peers: fc.array(fc.integer({ min: 1, max: 9 })) }),
        offset: fc.nat(),
        totalSize: fc.nat(),
        data: bytes,
      }),
    },
    { requiredKeys: ['type', 'from', 'to', 'term', 'logTerm', 'index', 'commit'] },
  );
  fc.assert(
    fc.property(fc.array(message, { minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 50 }), (msgs, step) => {
      const stream = joinFrames(msgs.map(encodeMessageBody));
      const dec = new FrameDecoder(1 << 20);
      const got: Message[] = [];
      for (let i = 0; i < stream.length; i += step) {
        for (const b of dec.push(stream.subarray(i, i + step))) {
          const f = decodeFrameBody(b);
          if (f.kind === 'message') got.push(f.message);
        }
      }
      assert.deepEqual(norm(got), norm(msgs));
    }),
    { numRuns: 200 },
  );
});
