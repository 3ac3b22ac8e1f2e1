/**
 * Benchmark of the kv state machine: apply puts creating N keys (random order), list prefixes,
 * snapshot and restore.   npm run bench:kv -- [keys]
 */
import { encodeCommand } from '../src/kv/commands.js';
import { KvStateMachine } from '../src/kv/state-machine.js';

const n = Number(process.argv[2] ?? 100_000);
const sm = new KvStateMachine();
const entries: Uint8Array[] = [];
let x = 12345;
for (let i = 0; i < n; i++) {
  x = (Math.imul(x, 1103515245) + 12345) >>> 0;
  entries.push(
    encodeCommand({
      op: 'put',
      key: `user/${x.toString(36)}/${i}`,
      value: { n: i, s: 'v'.repeat(20) },
      requestId: { client: `c${i % 500}`, seq: i },
    }),
  );
}
const time = (label: string, fn: () => void): void => {
  const t0 = performance.now();
  fn();
  console.log(`${label}: ${(performance.now() - t0).toFixed(0)} ms`);
};
time(`apply ${n} creating puts (with request ids)`, () => entries.forEach((e, i) => sm.apply(i + 1, e)));
time('1,000 prefix listings of 100 keys', () => {
  for (let i = 0; i < 1000; i++) sm.list(`user/${(i * 7919).toString(36).slice(0, 2)}`, 100);
});
let snap: Uint8Array = new Uint8Array();
time('snapshot', () => (snap = sm.snapshot()));
console.log(`snapshot size: ${(snap.length / 1024 / 1024).toFixed(1)} MiB`);
const copy = new KvStateMachine();
time('restore', () => copy.restore(snap));
console.log(`restored ${copy.size} keys, applied index ${copy.appliedIndex}`);
