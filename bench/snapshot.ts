/**
 * Backup cost: a 3-node cluster loaded with K keys (100-byte values), then `quorumkv snapshot save` idle and
 * under W concurrent writers (the writes' latency before and during the save), `snapshot restore` into three
 * directories, and the state machine's own snapshot time in this process for comparison.
 *
 *   npm run build && node dist/bench/snapshot.js [--keys 100000] [--writers 16]
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client } from '../src/client/client.js';
import { encodeCommand, type Command } from '../src/kv/commands.js';
import { KvStateMachine } from '../src/kv/state-machine.js';
import { LocalCluster } from '../src/server/local-cluster.js';
import { encodeBackup } from '../src/storage/backup.js';

const run = promisify(execFile);
const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '../src/cli/main.js');

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i < 0 ? dflt : Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name}: expected a positive integer`);
  return v;
}

const keys = arg('keys', 100_000);
const writers = arg('writers', 16);
const key = (i: number) => `key/${String(i).padStart(8, '0')}`;
const value = (i: number) => ({ i, pad: 'x'.repeat(80) });
const pct = (xs: number[], p: number) => (xs.length === 0 ? NaN : (xs[Math.floor((xs.length - 1) * p)] as number));
const ms = (x: number) => `${x.toFixed(1)} ms`;

async function cli(...args: string[]): Promise<number> {
  const t = performance.now();
  await run(process.execPath, [MAIN, ...args]);
  return performance.now() - t;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-bench-snap-'));
  const cluster = await LocalCluster.start({ nodes: 3, dir: path.join(dir, 'c') });
  try {
    await cluster.waitLeader();
    const endpoints = cluster.ids.map((id) => cluster.url(id));
    const client = new Client({ endpoints });
    const t = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (;;) {
          const from = next;
          next += 100;
          if (from >= keys) return;
          const success = [];
          for (let i = from; i < Math.min(keys, from + 100); i++)
            success.push({ op: 'put' as const, key: key(i), value: value(i) });
          await client.txn({ compare: [], success });
        }
      }),
    );
    console.log(`loaded ${keys} keys in ${(performance.now() - t).toFixed(0)} ms (transactions of 100 puts)`);
    const e = endpoints.join(',');
    const idle = await cli('snapshot', 'save', path.join(dir, 'idle.snap'), '-e', e);
    console.log(
      `save, idle: ${ms(idle)} (the CLI process included), ${statSync(path.join(dir, 'idle.snap')).size} bytes`,
    );

    let stop = false;
    const lat: { end: number; ms: number }[] = [];
    const load = Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        const wc = new Client({ endpoints });
        for (let n = 0; !stop; n++) {
          const s = performance.now();
          await wc.put(`load/${w}/${n}`, n);
          lat.push({ end: performance.now(), ms: performance.now() - s });
        }
      }),
    );
    await new Promise((r) => setTimeout(r, 2000));
    const saveStart = performance.now();
    const loaded = await cli('snapshot', 'save', path.join(dir, 'load.snap'), '-e', e);
    const saveEnd = performance.now();
    await new Promise((r) => setTimeout(r, 1000));
    stop = true;
    await load;
    const before = lat
      .filter((l) => l.end < saveStart)
      .map((l) => l.ms)
      .sort((a, b) => a - b);
    const during = lat
      .filter((l) => l.end >= saveStart && l.end <= saveEnd)
      .map((l) => l.ms)
      .sort((a, b) => a - b);
    console.log(`save, ${writers} writers: ${ms(loaded)}`);
    console.log(`  writes before: ${before.length}, p50 ${ms(pct(before, 0.5))}, p99 ${ms(pct(before, 0.99))}`);
    console.log(
      `  writes ending during the save: ${during.length}, p50 ${ms(pct(during, 0.5))}, max ${ms(pct(during, 1))}`,
    );
    const restore = await cli(
      'snapshot',
      'restore',
      path.join(dir, 'load.snap'),
      '--data',
      path.join(dir, 'r'),
      '--nodes',
      '3',
    );
    console.log(`restore into 3 data directories: ${ms(restore)} (the CLI process included)`);
  } finally {
    await cluster.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }

  // The leader's own work, in this process: the state machine's snapshot and the backup file around it.
  const kv = new KvStateMachine();
  for (let i = 0; i < keys; i++) {
    const cmd: Command = { op: 'put', key: key(i), value: value(i) };
    kv.apply(i + 1, encodeCommand(cmd), cmd);
  }
  for (let r = 0; r < 3; r++) {
    let t = performance.now();
    const data = kv.snapshot();
    const snap = performance.now() - t;
    t = performance.now();
    encodeBackup({ app: 'kv', index: keys, term: 1, peers: [1, 2, 3], node_id: 1, created_at: '' }, data);
    console.log(
      `state machine snapshot ${ms(snap)}, backup file around it (copy + SHA-256) ${ms(performance.now() - t)}`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
