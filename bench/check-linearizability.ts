/**
 * Benchmark of the linearizability checker on synthetic histories and on a recorded one.
 *   npm run bench:check -- [ops] [keys] [processes] [timeoutRate]
 * Prints one line per case: the valid history, then the same history with one read corrupted, then a read
 * from the future injected; last, `results/verify/seed300-k16-prefix.jsonl.gz` (one key, 2,790 operations,
 * 53 with unknown outcome, recorded by `quorumkv verify` under faults).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkLinearizable, parseHistory, type HistoryEvent } from '../src/check/linearizability.js';
import { readHistoryFile } from '../src/cli/check.js';
import { syntheticHistory } from '../src/check/synthetic.js';

const [ops = 100_000, keys = 50, processes = 30, timeoutRate = 0.01] = process.argv.slice(2).map(Number);

function run(label: string, h: HistoryEvent[], procs: number = processes): void {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const r = checkLinearizable(h, { timeoutMs: 120_000 });
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const verdict = r.ok ? 'linearizable' : r.timedOut ? 'timed out' : `violation on ${r.failure?.key}`;
  console.log(
    `${label}: ${r.checkedOps} ops, ${r.keys} keys, ${procs} processes → ${verdict} in ${ms.toFixed(0)} ms (${cpuMs.toFixed(0)} ms CPU)`,
  );
}

const h = syntheticHistory({ ops, keys, processes, timeoutRate, seed: 42 });
const infos = h.filter((e) => e.type === 'info').length;
console.log(`history: ${h.length} events, ${infos} info`);
run('valid', h);
// corrupt the read in the middle of the history to another value the key held at some point
const mid = h.findIndex((e, i) => i > h.length / 2 && e.type === 'ok' && e.f === 'get' && e.value !== null);
if (mid >= 0) {
  const e = h[mid] as HistoryEvent;
  const bad = h.slice();
  bad[mid] = { ...e, value: e.value === 1 ? 2 : 1 };
  run('one read corrupted', bad);
}
// a guaranteed violation: a read that returns a unique value before its only write was invoked
const t = (h[Math.floor(h.length / 2)] as HistoryEvent).time;
const key = (h[Math.floor(h.length / 2)] as HistoryEvent).key;
const injected: HistoryEvent[] = [
  { process: 'reader', type: 'invoke', f: 'get', key, time: t - 0.5 },
  { process: 'reader', type: 'ok', f: 'get', key, value: 'unique', time: t - 0.4 },
  { process: 'writer', type: 'invoke', f: 'put', key, value: 'unique', time: t - 0.3 },
  { process: 'writer', type: 'ok', f: 'put', key, value: 'unique', time: t - 0.2 },
];
run(
  'read from the future injected',
  [...h, ...injected].sort((a, b) => a.time - b.time),
);

const recorded = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'results',
  'verify',
  'seed300-k16-prefix.jsonl.gz',
);
const events = parseHistory(readHistoryFile(recorded));
run('recorded seed300-k16-prefix.jsonl.gz', events, new Set(events.map((e) => e.process)).size);
