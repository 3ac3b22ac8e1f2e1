/**
 * `npm run bench -- --vs etcd`: quorumkv's raft cluster beside a 3-node etcd (Debian's `etcd-server`) on
 * this machine, both driven by the same load generator (autocannon, keep-alive, requests straight to each
 * leader, 10,000 keys, 128-byte values): put at 64 connections, linearizable get at 64 connections and
 * put at 1 connection, the two systems alternated `rounds` times. Prints every measurement, the medians
 * side by side with the ratios, the leaders' event-loop delay (quorumkv) and each leader's RSS.
 * (../shared/bench-wrk/raft-vs-etcd.sh measures the same with wrk, a C generator.)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import * as hdr from 'hdr-histogram-js';
import { median } from '../src/bench/histogram.js';
import { freeNodePorts } from '../src/net/ports.js';
import { LocalCluster } from '../src/server/local-cluster.js';

export interface VsOptions {
  readonly duration: number;
  readonly rounds: number;
  readonly keys: number;
  readonly warmup: number;
}

interface Workload {
  readonly name: string;
  readonly op: 'put' | 'get';
  readonly connections: number;
}

const WORKLOADS: readonly Workload[] = [
  { name: 'put, 64 connections', op: 'put', connections: 64 },
  { name: 'linearizable get, 64 connections', op: 'get', connections: 64 },
  { name: 'put, 1 connection', op: 'put', connections: 1 },
];

const VALUE = 'v'.repeat(128);
const b64 = (s: string) => Buffer.from(s).toString('base64');

interface Measure {
  readonly opsPerSec: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
}

interface System {
  readonly name: string;
  readonly leaderUrl: string;
  readonly leaderPid: number | undefined;
  requests(op: 'put' | 'get', keys: number): autocannon.Request[];
  stop(): Promise<void>;
}

/** One autocannon run against `url`; latencies kept in microseconds. */
function load(url: string, connections: number, duration: number, requests: autocannon.Request[]): Promise<Measure> {
  const h = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
  });
  return new Promise((resolve, reject) => {
    const inst = autocannon({ url, connections, duration, pipelining: 1, requests }, (err, res) => {
      if (err) return reject(err instanceof Error ? err : new Error(String(err)));
      resolve({
        opsPerSec: res['2xx'] / duration,
        p50: h.getValueAtPercentile(50) / 1000,
        p99: h.getValueAtPercentile(99) / 1000,
        errors: res.errors + res.timeouts + res.non2xx,
      });
    });
    inst.on('response', (_c, status, _b, ms) => {
      if (status < 300) h.recordValue(Math.max(1, Math.round(ms * 1000)));
    });
  });
}

function rssMiB(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? Number.NaN : Number(m[1]) / 1024;
  } catch {
    return Number.NaN;
  }
}

async function startQuorumkv(): Promise<System> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'quorumkv-vs-'));
  const cluster = await LocalCluster.start({ nodes: 3, dir });
  const leader = await cluster.waitLeader();
  return {
    name: 'quorumkv',
    leaderUrl: cluster.url(leader),
    leaderPid: cluster.pid(leader),
    requests: (op, keys) =>
      Array.from({ length: keys }, (_, i) =>
        op === 'put'
          ? {
              method: 'PUT',
              path: `/kvs/k${i}`,
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ value: VALUE }),
            }
          : { method: 'GET', path: `/kvs/k${i}` },
      ),
    stop: async () => {
      await cluster.stopAll();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startEtcd(): Promise<System> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'quorumkv-vs-etcd-'));
  const ports = await freeNodePorts(6);
  const client = (i: number) => `http://127.0.0.1:${ports[i]}`;
  const peer = (i: number) => `http://127.0.0.1:${ports[3 + i]}`;
  const initial = [0, 1, 2].map((i) => `e${i}=${peer(i)}`).join(',');
  const procs: ChildProcess[] = [0, 1, 2].map((i) =>
    spawn(
      'etcd',
      [
        '--name',
        `e${i}`,
        '--data-dir',
        path.join(dir, `e${i}`),
        '--listen-client-urls',
        client(i),
        '--advertise-client-urls',
        client(i),
        '--listen-peer-urls',
        peer(i),
        '--initial-advertise-peer-urls',
        peer(i),
        '--initial-cluster',
        initial,
        '--initial-cluster-state',
        'new',
        '--log-level',
        'error',
      ],
      { stdio: 'ignore' },
    ),
  );
  const stop = async () => {
    for (const p of procs) if (p.pid !== undefined && p.exitCode === null) p.kill('SIGTERM');
    await Promise.all(procs.map((p) => (p.exitCode !== null ? undefined : new Promise((r) => p.once('exit', r)))));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const until = Date.now() + 30_000;
    for (;;) {
      for (let i = 0; i < 3; i++) {
        try {
          const res = await fetch(`${client(i)}/v3/maintenance/status`, {
            method: 'POST',
            body: '{}',
            signal: AbortSignal.timeout(1000),
          });
          const s = (await res.json()) as { header?: { member_id?: string }; leader?: string };
          if (s.leader !== undefined && s.leader !== '0' && s.leader === s.header?.member_id) {
            return {
              name: 'etcd',
              leaderUrl: client(i),
              leaderPid: procs[i]?.pid,
              requests: (op, keys) =>
                Array.from({ length: keys }, (_, k) =>
                  op === 'put'
                    ? {
                        method: 'POST',
                        path: '/v3/kv/put',
                        body: JSON.stringify({ key: b64(`k${k}`), value: b64(VALUE) }),
                      }
                    : { method: 'POST', path: '/v3/kv/range', body: JSON.stringify({ key: b64(`k${k}`) }) },
                ),
              stop,
            };
          }
        } catch {
          // not up yet
        }
      }
      if (Date.now() > until) throw new Error('etcd: no leader within 30 s');
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (err) {
    await stop();
    throw err;
  }
}

export async function vsEtcd(o: VsOptions): Promise<void> {
  if (spawnSync('etcd', ['--version'], { stdio: 'ignore' }).status !== 0) {
    console.log('etcd is not installed (Debian: apt-get install etcd-server): nothing to compare with');
    process.exitCode = 1;
    return;
  }
  console.log(
    `quorumkv vs etcd: 3 nodes each, autocannon for both, ${o.keys} keys, 128-byte values, ${o.duration} s per run, ` +
      `${o.rounds} alternated round(s), ${os.cpus().length} cpus, load average ${os.loadavg()[0].toFixed(2)}`,
  );
  const systems = [await startQuorumkv(), await startEtcd()];
  const results = new Map<string, Measure[]>();
  try {
    // Every key exists before the gets (written 32 at a time); both systems warmed up the same way.
    for (const s of systems) {
      const puts = s.requests('put', o.keys);
      for (let i = 0; i < puts.length; i += 32) {
        await Promise.all(
          puts.slice(i, i + 32).map(async (rq) => {
            const res = await fetch(s.leaderUrl + rq.path, {
              method: rq.method,
              body: rq.body as string,
              headers: { 'content-type': 'application/json' },
            });
            if (res.status >= 300) throw new Error(`${s.name}: preload ${rq.path}: HTTP ${res.status}`);
            await res.arrayBuffer();
          }),
        );
      }
      await load(s.leaderUrl, 64, o.warmup, puts);
    }
    for (let r = 1; r <= o.rounds; r++) {
      for (const w of WORKLOADS) {
        for (const s of r % 2 === 1 ? systems : [...systems].reverse()) {
          const m = await load(s.leaderUrl, w.connections, o.duration, s.requests(w.op, o.keys));
          const key = `${w.name}|${s.name}`;
          results.set(key, [...(results.get(key) ?? []), m]);
          console.log(
            `round ${r}  ${w.name.padEnd(34)} ${s.name.padEnd(9)} ${m.opsPerSec.toFixed(0).padStart(6)} ops/s   ` +
              `p50 ${m.p50.toFixed(2)} ms   p99 ${m.p99.toFixed(2)} ms   errors ${m.errors}`,
          );
        }
      }
    }
    const rss = systems.map((s) => `${s.name} ${rssMiB(s.leaderPid).toFixed(0)} MiB`).join(', ');
    const mid = (xs: readonly number[]) => median(xs) ?? Number.NaN;
    console.log('');
    console.log('| workload | quorumkv | etcd | ratio |');
    console.log('|---|---|---|---|');
    for (const w of WORKLOADS) {
      const q = results.get(`${w.name}|quorumkv`) ?? [];
      const e = results.get(`${w.name}|etcd`) ?? [];
      const cell = (xs: Measure[]) =>
        `${mid(xs.map((x) => x.opsPerSec)).toFixed(0)} ops/s, p50 ${mid(xs.map((x) => x.p50)).toFixed(2)} ms, ` +
        `p99 ${mid(xs.map((x) => x.p99)).toFixed(2)} ms`;
      const ratio = mid(q.map((x, i) => x.opsPerSec / (e[i]?.opsPerSec ?? Number.NaN)));
      console.log(`| ${w.name} | ${cell(q)} | ${cell(e)} | ${ratio.toFixed(2)}× |`);
    }
    console.log(`\nleader RSS after the runs: ${rss}`);
  } finally {
    for (const s of systems) await s.stop();
  }
}
