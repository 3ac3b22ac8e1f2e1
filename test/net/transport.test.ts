import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { TcpTransport, type TcpTransportOptions } from '../../src/net/transport.js';
import { encodeMessageBody, joinFrames } from '../../src/net/codec.js';
import { PeerKeys } from '../../src/net/peer-auth.js';
import { MESSAGE_TYPES, type Message, type NodeId } from '../../src/raft/types.js';
import { freePort, handshakeAs, msg, norm, sleep, waitFor } from './helpers.js';

type Opts = Partial<TcpTransportOptions>;

/** The cluster secret of these tests' transports. */
const KEYS = PeerKeys.fromBuffers([Buffer.alloc(32, 0x5a)]);

/** Starts transports for ids 1..n on free ports, each knowing all others; collects what each receives. */
async function cluster(n: number, opts: Opts = {}) {
  const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
  const peers = new Map<NodeId, { host: string; port: number }>(
    ports.map((port, i) => [i + 1, { host: '127.0.0.1', port }]),
  );
  const inbox = new Map<NodeId, Message[]>();
  const start = async (id: NodeId): Promise<TcpTransport> => {
    const t = await TcpTransport.listen({
      id,
      host: '127.0.0.1',
      port: ports[id - 1] as number,
      peers,
      keys: KEYS,
      ...opts,
    });
    if (!inbox.has(id)) inbox.set(id, []);
    t.onMessage((m) => inbox.get(id)?.push(m));
    return t;
  };
  const nodes: TcpTransport[] = [];
  for (let id = 1; id <= n; id++) nodes.push(await start(id));
  const box = (id: NodeId): Message[] => inbox.get(id) as Message[];
  const closeAll = async (): Promise<void> => {
    await Promise.all(nodes.map((t) => t.close()));
  };
  return { nodes, ports, peers, box, start, closeAll };
}

test('every message type crosses TCP intact; a burst arrives complete and in order', async () => {
  const c = await cluster(3);
  try {
    const [t1, t2] = c.nodes as [TcpTransport, TcpTransport, TcpTransport];
    const sent: Message[] = MESSAGE_TYPES.map((type, i) =>
      msg(type, 1, 2, {
        index: i,
        entries: type === 'app' ? [{ index: 1, term: 1, type: 'normal', data: new Uint8Array([i, 7]) }] : undefined,
        reject: type.endsWith('-resp') ? false : undefined,
        context: type === 'heartbeat' ? 5 : undefined,
      }),
    );
    // msg() spreads the undefined optionals; the wire omits them
    for (const m of sent) for (const k of Object.keys(m) as (keyof Message)[]) if (m[k] === undefined) delete m[k];
    t1.send(sent);
    await waitFor(() => c.box(2).length === sent.length, 5000, 'all types');
    assert.deepEqual(norm(c.box(2)), norm(sent));

    // 5,000 small messages in a few sends, from 2 to 1 and 3: complete and ordered
    const burst = (to: NodeId): Message[] =>
      Array.from({ length: 5000 }, (_, i) => msg('heartbeat', 2, to, { index: i, context: i }));
    for (let i = 0; i < 5; i++) {
      t2.send(burst(1).slice(i * 1000, (i + 1) * 1000));
      t2.send(burst(3).slice(i * 1000, (i + 1) * 1000));
    }
    await waitFor(() => c.box(1).length === 5000 && c.box(3).length === 5000, 10000, 'burst');
    assert.deepEqual(
      c.box(1).map((m) => m.index),
      Array.from({ length: 5000 }, (_, i) => i),
    );
    const s = t2.stats().peers.find((p) => p.id === 1);
    assert.equal(s?.sent, 5000);
    assert.equal(s?.connected, true);
    assert.equal(s?.dropped, 0);
    assert.equal(t1.stats().peers.find((p) => p.id === 2)?.received, 5000);
  } finally {
    await c.closeAll();
  }
});

test('a large snapshot chunk arrives byte-for-byte', async () => {
  const c = await cluster(2, { maxMessageBytes: 32 * 1024 * 1024 });
  try {
    const data = new Uint8Array(12 * 1024 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 11)) & 0xff;
    const m = msg('snap', 1, 2, {
      snapshot: { metadata: { index: 500, term: 7, peers: [1, 2] }, offset: 0, totalSize: data.length, data },
    });
    (c.nodes[0] as TcpTransport).send([m, msg('heartbeat', 1, 2)]);
    await waitFor(() => c.box(2).length === 2, 10000, 'snapshot');
    const got = c.box(2)[0] as Message;
    assert.equal(got.type, 'snap');
    assert.deepEqual(got.snapshot?.metadata, { index: 500, term: 7, peers: [1, 2] });
    assert.ok(got.snapshot?.data instanceof Uint8Array);
    assert.equal(Buffer.compare(Buffer.from(got.snapshot.data), Buffer.from(data)), 0);
  } finally {
    await c.closeAll();
  }
});

test('reconnects after the peer restarts; messages queued meanwhile are delivered', async () => {
  const c = await cluster(2, { backoffMinMs: 20, backoffMaxMs: 100 });
  const t1 = c.nodes[0] as TcpTransport;
  let t2 = c.nodes[1] as TcpTransport;
  try {
    t1.send([msg('heartbeat', 1, 2, { context: 1 })]);
    await waitFor(() => c.box(2).length === 1, 5000, 'first message');
    await t2.close();
    await waitFor(() => t1.stats().peers[0]?.connected === false, 5000, 'disconnect noticed');
    t1.send([msg('heartbeat', 1, 2, { context: 2 }), msg('heartbeat', 1, 2, { context: 3 })]);
    await sleep(150); // a few failed connection attempts
    assert.equal(t1.stats().peers[0]?.queueLength, 2);
    t2 = await c.start(2);
    c.nodes[1] = t2;
    await waitFor(() => c.box(2).length === 3, 5000, 'queued messages after restart');
    assert.deepEqual(
      c.box(2).map((m) => m.context),
      [1, 2, 3],
    );
    const s = t1.stats().peers[0];
    assert.equal(s?.connected, true);
    assert.ok((s?.reconnects ?? 0) >= 1);
  } finally {
    await c.closeAll();
  }
});

test('the per-peer queue is bounded: messages beyond it are dropped and counted', async () => {
  const port = await freePort(); // nobody listens there
  const t = await TcpTransport.listen({
    id: 1,
    host: '127.0.0.1',
    port: 0,
    peers: new Map([[2, { host: '127.0.0.1', port }]]),
    queueLimit: 10,
  });
  try {
    assert.ok(t.port > 0);
    t.send(Array.from({ length: 25 }, (_, i) => msg('app', 1, 2, { index: i })));
    t.send([msg('app', 1, 9)]); // not a peer
    const s = t.stats();
    assert.equal(s.peers[0]?.queueLength, 10);
    assert.equal(s.peers[0]?.droppedQueueFull, 15);
    assert.equal(s.peers[0]?.dropped, 15);
    assert.equal(s.unknownDestination, 1);
    assert.equal(s.peers[0]?.connected, false);
  } finally {
    await t.close();
  }
  assert.equal(t.stats().peers[0]?.droppedOnClose, 10);
});

test('oversized messages are dropped at the sender; an oversized or malformed frame closes only that connection', async () => {
  const c = await cluster(2, { maxMessageBytes: 64 * 1024 });
  try {
    const [t1, t2] = c.nodes as [TcpTransport, TcpTransport];
    const big = msg('app', 1, 2, { entries: [{ index: 1, term: 1, type: 'normal', data: new Uint8Array(70_000) }] });
    t1.send([big, msg('heartbeat', 1, 2)]);
    await waitFor(() => c.box(2).length === 1, 5000, 'small message');
    assert.equal(c.box(2)[0]?.type, 'heartbeat');
    assert.equal(t1.stats().peers[0]?.droppedOversize, 1);

    // A peer holding the secret, then misbehaving: a header announcing 1 MiB, a spoofed sender, garbage.
    const port = c.ports[1] as number;
    const huge = Buffer.alloc(4);
    huge.writeUInt32BE(1024 * 1024);
    const bad = [huge, joinFrames([encodeMessageBody(msg('heartbeat', 3, 2))]), joinFrames([Buffer.from([0xc1])])];
    for (const bytes of bad) {
      const h = await handshakeAs(port, 1, 2, KEYS);
      assert.equal(h.answer === 'closed' ? 'closed' : h.answer.kind, 'welcome');
      h.peer.writeRaw(bytes);
      await h.peer.closed;
    }
    assert.equal(t2.stats().protocolErrors, 3);
    // Before the handshake: garbage, a message instead of a hello, a huge header.
    for (const bytes of [
      joinFrames([Buffer.from([0x92, 0x01, 0xc1])]),
      joinFrames([encodeMessageBody(msg('heartbeat', 1, 2))]),
      huge,
    ]) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      s.resume(); // reads (and drops) the challenge, so the close is seen
      s.write(bytes);
      await new Promise<void>((resolve) => s.on('close', () => resolve()));
    }
    assert.equal(t2.stats().protocolErrors, 3);
    const refused = t2.stats().authRefused;
    assert.equal(refused.find((r) => r.reason === 'malformed')?.count, 2);
    assert.equal(refused.find((r) => r.reason === 'missing')?.count, 1);

    // The real link still works.
    t1.send([msg('heartbeat', 1, 2, { context: 9 })]);
    await waitFor(() => c.box(2).length === 2, 5000, 'message after bad frames');
    assert.equal(c.box(2)[1]?.context, 9);
  } finally {
    await c.closeAll();
  }
});

test('fault hook: symmetric isolation, one-way drops, delay, and healing', async () => {
  const c = await cluster(3);
  try {
    const [t1, t2, t3] = c.nodes as [TcpTransport, TcpTransport, TcpTransport];
    const hb = (from: NodeId, to: NodeId, context: number) => msg('heartbeat', from, to, { context });
    const everyone = (ctx: number): void => {
      t1.send([hb(1, 2, ctx), hb(1, 3, ctx)]);
      t2.send([hb(2, 1, ctx), hb(2, 3, ctx)]);
      t3.send([hb(3, 1, ctx), hb(3, 2, ctx)]);
    };
    const ctxs = (id: NodeId, ctx: number): NodeId[] =>
      c
        .box(id)
        .filter((m) => m.context === ctx)
        .map((m) => m.from)
        .sort();

    // Isolate node 3 by configuring only node 3: nothing crosses in either direction.
    t3.setFaults({ drop: [1, 2] });
    everyone(1);
    await waitFor(() => ctxs(1, 1).length === 1 && ctxs(2, 1).length === 1, 5000, 'round 1');
    await sleep(50);
    assert.deepEqual(ctxs(1, 1), [2]);
    assert.deepEqual(ctxs(2, 1), [1]);
    assert.deepEqual(ctxs(3, 1), []);
    const s3 = t3.stats();
    assert.equal(s3.peers.find((p) => p.id === 1)?.droppedFault, 2); // one outbound, one inbound

    // One direction only: 1 -> 2 is cut, 2 -> 1 still flows.
    t3.setFaults({});
    t1.setFaults({ dropOutbound: [2] });
    everyone(2);
    await waitFor(() => ctxs(1, 2).length === 2 && ctxs(3, 2).length === 2 && ctxs(2, 2).length === 1, 5000, 'r2');
    await sleep(50);
    assert.deepEqual(ctxs(2, 2), [3]);

    // Delay: node 1 delays everything it sends by 200 ms.
    t1.setFaults({ delayMs: 200 });
    t1.send([hb(1, 2, 3)]);
    await sleep(60);
    assert.deepEqual(ctxs(2, 3), []);
    await waitFor(() => ctxs(2, 3).length === 1, 5000, 'delayed message');

    // Healed: everything flows again.
    t1.setFaults({});
    everyone(4);
    await waitFor(() => [1, 2, 3].every((id) => ctxs(id, 4).length === 2), 5000, 'healed');
  } finally {
    await c.closeAll();
  }
});
