/**
 * Peer transport throughput: two TcpTransports in one process on loopback; node 1 sends `--messages`
 * `app` messages (each with `--entries` entries of `--bytes` bytes) in batches of `--batch`, node 2 counts
 * them. Prints messages/s and MB/s. Usage: npm run bench:transport -- --messages 200000 --batch 64
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { PeerKeys } from '../src/net/peer-auth.js';
import { TcpTransport } from '../src/net/transport.js';
import type { Message } from '../src/raft/types.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '200000' },
    batch: { type: 'string', default: '64' },
    entries: { type: 'string', default: '1' },
    bytes: { type: 'string', default: '128' },
  },
});
const total = Number(values.messages);
const batch = Number(values.batch);
const perMsg = Number(values.entries);
const size = Number(values.bytes);

// Both ends hold a cluster secret, as real nodes do: the connection starts with the authenticated handshake.
const keys = PeerKeys.fromBuffers([randomBytes(32)]);
// The receiver only accepts (it never sends), so it needs no peer list.
const b = await TcpTransport.listen({ id: 2, host: '127.0.0.1', port: 0, peers: new Map(), keys });
const tConnect = performance.now();
const sender = await TcpTransport.listen({
  id: 1,
  host: '127.0.0.1',
  port: 0,
  peers: new Map([[2, { host: '127.0.0.1', port: b.port }]]),
  queueLimit: 1_000_000,
  queueBytesLimit: 1 << 30,
  keys,
});

let received = 0;
let done: () => void = () => {};
const finished = new Promise<void>((r) => (done = r));
b.onMessage(() => {
  if (++received === total) done();
});
while (!sender.stats().peers[0]?.connected) await new Promise((r) => setImmediate(r));
const connectMs = performance.now() - tConnect;

const data = new Uint8Array(size).fill(7);
const mk = (i: number): Message => ({
  type: 'app',
  from: 1,
  to: 2,
  term: 5,
  logTerm: 5,
  index: i * perMsg,
  commit: i * perMsg,
  entries: Array.from({ length: perMsg }, (_, k) => ({ index: i * perMsg + k + 1, term: 5, type: 'normal', data })),
});

const t0 = performance.now();
let sent = 0;
// Send in batches, yielding to the event loop like a server would between Ready's.
while (sent < total) {
  const n = Math.min(batch, total - sent);
  sender.send(Array.from({ length: n }, (_, k) => mk(sent + k)));
  sent += n;
  if (sender.stats().peers[0]!.queueLength > 50_000) await new Promise((r) => setImmediate(r));
  else if (sent % (batch * 16) === 0) await new Promise((r) => setImmediate(r));
}
await finished;
const secs = (performance.now() - t0) / 1000;
const s = sender.stats().peers[0]!;
console.log(
  `${total} messages (${perMsg} x ${size} B entries) in ${secs.toFixed(2)} s: ` +
    `${Math.round(total / secs).toLocaleString('en')} msg/s, ${(s.bytesSent / secs / 1e6).toFixed(1)} MB/s, dropped ${s.dropped}` +
    ` (connect + handshake ${connectMs.toFixed(2)} ms)`,
);
await sender.close();
await b.close();
