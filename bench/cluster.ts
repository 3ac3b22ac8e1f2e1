/**
 * Cluster benchmark: `npm run bench -- --nodes 3 --concurrency 64 --op put|get --duration 15`.
 *
 * Starts a local raft cluster (real processes), drives it through the HTTP API over keep-alive connections
 * with autocannon, then measures a bare in-memory Fastify server with the same routes and the same load
 * generator, and prints ops/s, p50/p99 latency, server CPU per op (and the leader's share) and the ratio of
 * the two. The two measurements alternate `--rounds` times (default 3: the bare server's rate alone moves
 * by ±10% between runs on a shared 2-core machine) and the run ends with the medians.
 *
 * `--tls` (and/or `--auth`): the cost of security instead. Each round measures the same cluster twice, plain
 * and secured — HTTPS with development certificates in the temporary directory (and mutual TLS between the
 * nodes), and with `--auth` a root user whose Basic credential every request carries — and prints the
 * secured cluster's rate as a share of the plain one's (the bare server is not measured).
 *
 * `--dashboard`: the cost of an open dashboard instead. One cluster is measured alternately without and with
 * one `/ui/events` stream open on each node (as if a dashboard page were open on every node: each node then
 * gathers every node's summary once per second), `--rounds` pairs in alternating order, and the run prints
 * the rate with the streams open as a share of the rate without them.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { Command } from 'commander';
import * as hdr from 'hdr-histogram-js';
import { LocalCluster } from '../src/server/local-cluster.js';
import { vsEtcd } from './vs-etcd.js';
import { median } from '../src/bench/histogram.js';

interface Options {
  nodes: number;
  warmup: number;
  concurrency: number;
  op: 'put' | 'get';
  duration: number;
  keys: number;
  target: 'leader' | 'all';
  storage: 'disk' | 'memory';
  consistency: 'linearizable' | 'lease' | 'stale';
  bare: boolean;
  tls: boolean;
  auth: boolean;
  dashboard: boolean;
}

/** How the load generator reaches a secured cluster: its CA and the Authorization header. */
interface Access {
  readonly ca?: string;
  readonly authorization?: string;
}

interface RunResult {
  /** CPU time (user + system) the server processes used per successful op, in microseconds. */
  cpuUsPerOp?: number;
  opsPerSec: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  total: number;
}

const VALUE = JSON.stringify({ value: 'x'.repeat(100) });

async function drive(urls: readonly string[], o: Options, access: Access = {}): Promise<RunResult> {
  // One autocannon instance per target URL, the connections split between them.
  const per = urls.map((_, i) => Math.floor(o.concurrency / urls.length) + (i < o.concurrency % urls.length ? 1 : 0));
  const suffix = o.op === 'get' ? `?consistency=${o.consistency}` : '';
  const latency = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
  });
  const runs = urls
    .map((url, i) => ({ url, connections: per[i] }))
    .filter((r) => r.connections > 0)
    .map(({ url, connections }, i) => {
      // Prebuilt requests (autocannon builds each once), cycling over distinct keys; every connection walks
      // the same list from its own position in time, so keys are spread and shared.
      const distinct = Math.min(o.keys, 256);
      const requests = Array.from({ length: distinct }, (_, j) => ({
        method: o.op === 'put' ? ('PUT' as const) : ('GET' as const),
        path: `/kvs/bench-${(i * 7919 + j * Math.max(1, Math.floor(o.keys / distinct))) % o.keys}${suffix}`,
        headers: {
          ...(o.op === 'put' ? { 'content-type': 'application/json' } : {}),
          ...(access.authorization === undefined ? {} : { authorization: access.authorization }),
        },
        body: o.op === 'put' ? VALUE : undefined,
      }));
      return new Promise<autocannon.Result>((resolve, reject) => {
        const tlsOptions = access.ca === undefined ? {} : { tlsOptions: { ca: access.ca } };
        const inst = autocannon(
          { url, connections, duration: o.duration, pipelining: 1, requests, ...tlsOptions },
          (err, res) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(res)),
        );
        // autocannon's own histogram truncates to whole milliseconds; keep microseconds here.
        inst.on('response', (_client, statusCode, _bytes, ms) => {
          if (statusCode < 300) latency.recordValue(Math.max(1, Math.round(ms * 1000)));
        });
      });
    });
  const results = await Promise.all(runs);
  const total = results.reduce((s, r) => s + r.requests.total, 0);
  const ok = results.reduce((s, r) => s + r['2xx'], 0);
  return {
    opsPerSec: ok / o.duration,
    p50: latency.getValueAtPercentile(50) / 1000,
    p99: latency.getValueAtPercentile(99) / 1000,
    errors: results.reduce((s, r) => s + r.errors + r.timeouts, 0),
    non2xx: results.reduce((s, r) => s + r.non2xx, 0),
    total,
  };
}

/** The same load for `o.warmup` seconds, unmeasured: the servers' code gets compiled first. */
async function warm(urls: readonly string[], o: Options, access: Access = {}): Promise<void> {
  if (o.warmup > 0) await drive(urls, { ...o, duration: o.warmup }, access);
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux). */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** Runs `run`, adding the server CPU per successful op; `used` gets each process's CPU seconds. */
async function measured(
  pids: readonly (number | undefined)[],
  run: () => Promise<RunResult>,
  used: number[] = [],
): Promise<RunResult> {
  const before = pids.map(cpuSeconds);
  const r = await run();
  pids.forEach((p, i) => (used[i] = cpuSeconds(p) - (before[i] ?? 0)));
  const total = used.reduce((s, u) => s + u, 0);
  const ok = r.total - r.non2xx - r.errors;
  return { ...r, cpuUsPerOp: ok > 0 ? (total * 1e6) / ok : undefined };
}

async function preload(
  url: string,
  keys: number,
  access: Access = {},
  fetcher: (url: string, init: RequestInit) => Promise<Response> = fetch,
): Promise<void> {
  const batch = 32;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (access.authorization !== undefined) headers.authorization = access.authorization;
  for (let i = 0; i < keys; i += batch) {
    await Promise.all(
      Array.from({ length: Math.min(batch, keys - i) }, (_, j) =>
        fetcher(`${url}/kvs/bench-${i + j}`, { method: 'PUT', headers, body: VALUE }).then((r) => {
          if (r.status >= 300) throw new Error(`preload failed: ${r.status}`);
          return r.arrayBuffer();
        }),
      ),
    );
  }
}

async function startBare(): Promise<{ url: string; pid: number | undefined; stop(): Promise<void> }> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'cluster-bare.js');
  const child = spawn(process.execPath, [script, '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      out += d;
      const m = /"url":"([^"]+)"/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`bare server exited with ${code}`)));
  });
  return {
    url,
    pid: child.pid,
    stop: async () => {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      await exited;
    },
  };
}

function line(name: string, r: RunResult): string {
  return (
    `${name.padEnd(8)} ${r.opsPerSec.toFixed(0).padStart(8)} ops/s   p50 ${r.p50.toFixed(2)} ms   p99 ${r.p99.toFixed(2)} ms` +
    `   server CPU ${r.cpuUsPerOp === undefined ? '?' : r.cpuUsPerOp.toFixed(0)} us/op` +
    `   (${r.total} requests, ${r.non2xx} non-2xx, ${r.errors} errors)`
  );
}

/** The cluster's measurement: the run, plus CPU per op split between the leader and the followers. */
interface ClusterRun {
  readonly result: RunResult;
  readonly leaderUs?: number;
  readonly followersUs?: number;
  /** The leader's event-loop delays during the run (from its /metrics before and after). */
  readonly loop?: LoopFigures;
}

/** Event-loop delay during a run: p99 and p99.9 as bucket bounds, and the largest bucket reached (ms). */
interface LoopFigures {
  readonly p99: number;
  readonly p999: number;
  readonly worst: number;
  readonly samples: number;
}

/** The cumulative `quorumkv_event_loop_delay_seconds` buckets of a /metrics text: upper bound -> count. */
function loopBuckets(metrics: string): Map<number, number> {
  const out = new Map<number, number>();
  const re = /^quorumkv_event_loop_delay_seconds_bucket\{le="([^"]+)"\} (\d+)/gm;
  for (const m of metrics.matchAll(re)) out.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
  return out;
}

/** The delays recorded between two scrapes, as percentiles at bucket bounds (ms). */
function loopFigures(before: Map<number, number>, after: Map<number, number>): LoopFigures | undefined {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const counts = bounds.map((b) => (after.get(b) ?? 0) - (before.get(b) ?? 0));
  const total = counts.at(-1) ?? 0;
  if (total <= 0) return undefined;
  const at = (q: number) => (bounds[counts.findIndex((c) => c >= q * total)] ?? Infinity) * 1000;
  let worst = 0;
  for (let i = 0; i < bounds.length; i++) {
    if (counts[i] > (i === 0 ? 0 : counts[i - 1])) worst = (bounds[i] as number) * 1000;
  }
  return { p99: at(0.99), p999: at(0.999), worst, samples: total };
}

const ms = (x: number) => (x === Infinity ? '>3000' : x < 1 ? x.toFixed(1) : x.toFixed(0));

function loopLine(l: LoopFigures | undefined): string {
  return l === undefined
    ? ''
    : `   loop delay p99 <=${ms(l.p99)} ms, p99.9 <=${ms(l.p999)} ms, worst <=${ms(l.worst)} ms`;
}

/** `secured`: with `o.tls` and `o.auth` as asked (the plain cluster has neither). */
async function measureCluster(o: Options, secured = false): Promise<ClusterRun> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'quorumkv-bench-'));
  const cluster = await LocalCluster.start({
    nodes: o.nodes,
    dir,
    storage: o.storage,
    tls: secured && o.tls,
    auth: secured && o.auth,
  });
  try {
    const leader = await cluster.waitLeader();
    const urls = o.target === 'leader' ? [cluster.url(leader)] : cluster.ids.map((id) => cluster.url(id));
    const access: Access = {
      ...(cluster.caPem === undefined ? {} : { ca: cluster.caPem }),
      ...(cluster.rootPassword === undefined
        ? {}
        : { authorization: `Basic ${Buffer.from(`root:${cluster.rootPassword}`).toString('base64')}` }),
    };
    await preload(cluster.url(leader), o.keys, access, (u, init) => cluster.fetch(u, init));
    await warm(urls, o, access);
    const used: number[] = [];
    const scrape = async () => {
      try {
        const res = await cluster.fetch(
          `${cluster.url(leader)}/metrics`,
          access.authorization === undefined ? {} : { headers: { authorization: access.authorization } },
        );
        return loopBuckets(await res.text());
      } catch {
        return new Map<number, number>();
      }
    };
    const loopBefore = await scrape();
    const result = await measured(
      cluster.ids.map((id) => cluster.pid(id)),
      () => drive(urls, o, access),
      used,
    );
    const loop = loopFigures(loopBefore, await scrape());
    const ok = result.total - result.non2xx - result.errors;
    if (ok <= 0) return { result, ...(loop === undefined ? {} : { loop }) };
    const li = cluster.ids.indexOf(leader);
    const followers = used.reduce((sum, u, i) => (i === li ? sum : sum + u), 0);
    return {
      result,
      leaderUs: ((used[li] ?? 0) * 1e6) / ok,
      followersUs: (followers * 1e6) / ok,
      ...(loop === undefined ? {} : { loop }),
    };
  } finally {
    await cluster.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function measureBare(o: Options): Promise<RunResult> {
  const bare = await startBare();
  try {
    await preload(bare.url, o.keys);
    await warm([bare.url], o);
    return await measured([bare.pid], () => drive([bare.url], o));
  } finally {
    await bare.stop();
  }
}

/** Median of a non-empty list (every round yields one figure). */
const mid = (xs: readonly number[]): number => median(xs) ?? Number.NaN;

async function main(): Promise<void> {
  const program = new Command()
    .option('--nodes <n>', 'cluster size', '3')
    .option('--concurrency <n>', 'concurrent keep-alive clients', '64')
    .option('--op <op>', 'put or get', 'put')
    .option('--duration <s>', 'seconds per measurement', '15')
    .option('--warmup <s>', 'seconds of the same load before each measurement, not counted (JIT warm-up)', '2')
    .option('--keys <n>', 'distinct keys', '1000')
    .option('--target <t>', 'leader (clients found the leader) or all (spread, followers forward)', 'leader')
    .option('--storage <s>', 'disk or memory', 'disk')
    .option('--consistency <c>', 'read level for --op get', 'linearizable')
    .option('--rounds <n>', 'cluster and bare measured alternately this many times; medians at the end', '3')
    .option('--no-bare', 'skip the bare-server measurement')
    .option('--tls', 'the cost of TLS: the cluster over HTTPS (mutual TLS between nodes) against the plain one')
    .option('--auth', 'the cost of authentication: every request with a Basic credential (combines with --tls)')
    .option('--dashboard', 'the cost of an open dashboard: one /ui/events stream on each node, alternated rounds')
    .option('--vs <system>', 'beside another store on this machine: etcd (3 nodes; put 64, get 64, put 1)')
    .parse();
  const raw = program.opts<Record<string, string | boolean>>();
  if (raw.vs !== undefined) {
    if (raw.vs !== 'etcd') program.error('--vs: only etcd is known');
    const given = (name: string, dflt: number) =>
      program.getOptionValueSource(name) === 'cli' ? Number(raw[name]) : dflt;
    return vsEtcd({
      duration: given('duration', 10),
      rounds: given('rounds', 2),
      keys: given('keys', 10_000),
      warmup: given('warmup', 5),
    });
  }
  const o: Options = {
    nodes: Number(raw.nodes),
    warmup: Number(raw.warmup),
    concurrency: Number(raw.concurrency),
    op: raw.op === 'get' ? 'get' : 'put',
    duration: Number(raw.duration),
    keys: Number(raw.keys),
    target: raw.target === 'all' ? 'all' : 'leader',
    storage: raw.storage === 'memory' ? 'memory' : 'disk',
    consistency: raw.consistency === 'lease' ? 'lease' : raw.consistency === 'stale' ? 'stale' : 'linearizable',
    bare: raw.bare !== false,
    tls: raw.tls === true,
    auth: raw.auth === true,
    dashboard: raw.dashboard === true,
  };
  const rounds = Math.max(1, Math.floor(Number(raw.rounds)) || 1);
  console.log(
    `quorumkv cluster bench: ${o.nodes} nodes, ${o.concurrency} clients, op ${o.op}` +
      `${o.op === 'get' ? ` (${o.consistency})` : ''}, ${o.duration} s, storage ${o.storage}, target ${o.target}, ` +
      `${os.cpus().length} cpus, ${rounds} round(s), load average ${os.loadavg()[0].toFixed(2)}`,
  );
  if (o.tls || o.auth) return securityCost(o, rounds);
  if (o.dashboard) return dashboardCost(o, rounds);
  const clusterRuns: ClusterRun[] = [];
  const bareRuns: RunResult[] = [];
  for (let r = 1; r <= rounds; r++) {
    const c = await measureCluster(o);
    clusterRuns.push(c);
    const split =
      c.leaderUs === undefined
        ? ''
        : `   (leader ${c.leaderUs.toFixed(0)}, followers ${c.followersUs?.toFixed(0)} us/op)`;
    console.log(line(rounds > 1 ? `cluster${r}` : 'cluster', c.result) + split + loopLine(c.loop));
    if (!o.bare) continue;
    const b = await measureBare(o);
    bareRuns.push(b);
    console.log(line(rounds > 1 ? `bare${r}` : 'bare', b));
    if (rounds > 1) console.log(`ratio${r}   ${(c.result.opsPerSec / b.opsPerSec).toFixed(3)}`);
  }
  const ops = mid(clusterRuns.map((c) => c.result.opsPerSec));
  if (rounds > 1) {
    const p = (f: (r: RunResult) => number) => mid(clusterRuns.map((c) => f(c.result))).toFixed(2);
    console.log(`cluster median ${ops.toFixed(0)} ops/s   p50 ${p((r) => r.p50)} ms   p99 ${p((r) => r.p99)} ms`);
    const loops = clusterRuns.flatMap((c) => (c.loop === undefined ? [] : [c.loop]));
    if (loops.length > 0) {
      console.log(
        `leader event-loop delay (medians of the rounds): p99 <=${ms(mid(loops.map((l) => l.p99)))} ms, ` +
          `p99.9 <=${ms(mid(loops.map((l) => l.p999)))} ms, worst <=${ms(mid(loops.map((l) => l.worst)))} ms`,
      );
    }
  }
  if (!o.bare) return;
  const bareOps = mid(bareRuns.map((b) => b.opsPerSec));
  if (rounds > 1) {
    const ratios = clusterRuns.map((c, i) => c.result.opsPerSec / (bareRuns[i] as RunResult).opsPerSec);
    console.log(`bare median    ${bareOps.toFixed(0)} ops/s`);
    console.log(`ratio    ${mid(ratios).toFixed(3)} of the bare server's rate (median of the rounds' ratios)`);
  } else {
    console.log(`ratio    ${(ops / bareOps).toFixed(3)} of the bare server's rate`);
  }
}

/** Plain and secured clusters alternately, `rounds` times; the secured rate as a share of the plain one. */
async function securityCost(o: Options, rounds: number): Promise<void> {
  const what = [o.tls ? 'TLS' : '', o.auth ? 'auth' : ''].filter((s) => s !== '').join(' + ');
  const plain: RunResult[] = [];
  const secured: RunResult[] = [];
  const plainRuns: ClusterRun[] = [];
  const securedRuns: ClusterRun[] = [];
  const split = (c: ClusterRun) =>
    `   leader ${c.leaderUs?.toFixed(0) ?? '?'} + followers ${c.followersUs?.toFixed(0) ?? '?'} us/op`;
  for (let r = 1; r <= rounds; r++) {
    const p = await measureCluster(o, false);
    plain.push(p.result);
    plainRuns.push(p);
    console.log(line(`plain${r}`, p.result) + split(p));
    const s = await measureCluster(o, true);
    secured.push(s.result);
    securedRuns.push(s);
    console.log(line(`secure${r}`, s.result) + split(s) + `   (${what})`);
    console.log(`ratio${r}   ${(s.result.opsPerSec / p.result.opsPerSec).toFixed(3)}`);
  }
  const ratio = mid(secured.map((s, i) => s.opsPerSec / (plain[i] as RunResult).opsPerSec));
  const med = (xs: readonly RunResult[], f: (r: RunResult) => number) => mid(xs.map(f)).toFixed(2);
  for (const [name, xs] of [
    ['plain', plain],
    [what, secured],
  ] as const) {
    console.log(
      `${name} median ${mid(xs.map((x) => x.opsPerSec)).toFixed(0)} ops/s   p50 ${med(xs, (x) => x.p50)} ms   ` +
        `p99 ${med(xs, (x) => x.p99)} ms   server CPU ${med(xs, (x) => x.cpuUsPerOp ?? Number.NaN)} us/op`,
    );
  }
  const cpu = (xs: readonly ClusterRun[], f: (c: ClusterRun) => number | undefined) =>
    mid(xs.map((x) => f(x) ?? Number.NaN)).toFixed(0);
  console.log(
    `server CPU per op, leader / followers (medians): plain ${cpu(plainRuns, (c) => c.leaderUs)} / ` +
      `${cpu(plainRuns, (c) => c.followersUs)} us, ${what} ${cpu(securedRuns, (c) => c.leaderUs)} / ` +
      `${cpu(securedRuns, (c) => c.followersUs)} us`,
  );
  console.log(
    `ratio    ${ratio.toFixed(3)} of the plain cluster's rate with ${what} (median of the rounds' ratios): ` +
      `${((1 - ratio) * 100).toFixed(1)}% fewer ${o.op}s/s`,
  );
}

const signed = (x: number): string => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`;

/** One `/ui/events` stream per node, read to the end; `close` ends them and says how many summaries came. */
function openDashboards(urls: readonly string[]): { close(): Promise<number> } {
  const ac = new AbortController();
  let events = 0;
  const reads = urls.map(async (url) => {
    try {
      const res = await fetch(`${url}/ui/events`, { signal: ac.signal });
      if (res.status !== 200 || res.body === null) throw new Error(`${url}/ui/events: HTTP ${res.status}`);
      const dec = new TextDecoder();
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        events += dec.decode(chunk, { stream: true }).split('event: summary').length - 1;
      }
    } catch (err) {
      if (!ac.signal.aborted) throw err;
    }
  });
  return {
    async close() {
      ac.abort();
      await Promise.all(reads);
      return events;
    },
  };
}

/** The same cluster with and without a dashboard stream open on every node, alternately. */
async function dashboardCost(o: Options, rounds: number): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'quorumkv-bench-'));
  const cluster = await LocalCluster.start({ nodes: o.nodes, dir, storage: o.storage });
  try {
    const leader = await cluster.waitLeader();
    const urls = o.target === 'leader' ? [cluster.url(leader)] : cluster.ids.map((id) => cluster.url(id));
    const all = cluster.ids.map((id) => cluster.url(id));
    const pids = cluster.ids.map((id) => cluster.pid(id));
    await preload(cluster.url(leader), o.keys);
    // What the dashboards cost in CPU time, on the idle cluster (CPU time is not disturbed by other load on
    // the machine the way throughput is): the nodes' CPU per second without and with the streams open.
    const idleCpu = async (ms: number): Promise<number> => {
      const before = pids.map(cpuSeconds);
      await new Promise((res) => setTimeout(res, ms));
      return (pids.reduce<number>((sum, p, i) => sum + cpuSeconds(p) - (before[i] ?? 0), 0) * 1000) / (ms / 1000);
    };
    // Three pairs of 8 s windows, without then with the streams; the median of the pairs' differences.
    const idlePairs: [number, number][] = [];
    for (let i = 0; i < 3; i++) {
      const off = await idleCpu(8000);
      const idle = openDashboards(all);
      // Past the first summaries (minutes of history, first-use compilation) before measuring.
      await new Promise((res) => setTimeout(res, 2000));
      const on = await idleCpu(8000);
      await idle.close();
      idlePairs.push([off, on]);
    }
    const idleWithout = mid(idlePairs.map(([off]) => off));
    const idleWith = idleWithout + mid(idlePairs.map(([off, on]) => on - off));
    console.log(
      `idle     nodes' CPU ${idleWithout.toFixed(1)} ms/s without, ${idleWith.toFixed(1)} ms/s with a dashboard ` +
        `stream open on each node (${signed(idleWith - idleWithout)} ms/s; pairs ` +
        `${idlePairs.map(([off, on]) => signed(on - off)).join(', ')})`,
    );
    await warm(urls, o);
    const without: RunResult[] = [];
    const withUi: RunResult[] = [];
    const measureWith = async (r: number): Promise<void> => {
      const d = openDashboards(all);
      // The first summary carries minutes of history: let it pass before measuring.
      await new Promise((res) => setTimeout(res, 1500));
      const res = await measured(pids, () => drive(urls, o));
      const events = await d.close();
      withUi.push(res);
      console.log(line(`ui${r}`, res) + `   (${events} summaries on ${all.length} streams)`);
    };
    const measureWithout = async (r: number): Promise<void> => {
      const res = await measured(pids, () => drive(urls, o));
      without.push(res);
      console.log(line(`plain${r}`, res));
    };
    for (let r = 1; r <= rounds; r++) {
      // Alternating order (plain first in odd rounds), so a drift of the machine's speed does not favour one.
      if (r % 2 === 1) {
        await measureWithout(r);
        await measureWith(r);
      } else {
        await measureWith(r);
        await measureWithout(r);
      }
      console.log(
        `ratio${r}   ${((withUi[r - 1] as RunResult).opsPerSec / (without[r - 1] as RunResult).opsPerSec).toFixed(3)}`,
      );
    }
    const ratio = mid(withUi.map((w, i) => w.opsPerSec / (without[i] as RunResult).opsPerSec));
    const med = (xs: readonly RunResult[], f: (r: RunResult) => number) => mid(xs.map(f)).toFixed(2);
    for (const [name, xs] of [
      ['plain', without],
      ['dashboard', withUi],
    ] as const) {
      console.log(
        `${name} median ${mid(xs.map((x) => x.opsPerSec)).toFixed(0)} ops/s   p50 ${med(xs, (x) => x.p50)} ms   ` +
          `p99 ${med(xs, (x) => x.p99)} ms   server CPU ${med(xs, (x) => x.cpuUsPerOp ?? Number.NaN)} us/op`,
      );
    }
    // The CPU the open dashboards take, in puts: at the plain runs' server CPU per op, how many ops that CPU
    // would have served, as a share of the plain rate.
    const usPerOp = mid(without.map((x) => x.cpuUsPerOp ?? Number.NaN));
    const plainOps = mid(without.map((x) => x.opsPerSec));
    const displaced = ((idleWith - idleWithout) * 1000) / usPerOp;
    console.log(
      `cpu      the streams' ${signed(idleWith - idleWithout)} ms/s of CPU at ${usPerOp.toFixed(0)} us per ${o.op} ` +
        `is about ${displaced.toFixed(0)} ${o.op}s/s: ${((displaced / plainOps) * 100).toFixed(2)}% of the plain rate`,
    );
    console.log(
      `ratio    ${ratio.toFixed(3)} of the rate without a dashboard (median of the rounds' ratios): ` +
        `${Math.abs((1 - ratio) * 100).toFixed(1)}% ${ratio <= 1 ? 'fewer' : 'more'} ${o.op}s/s with one dashboard stream ` +
        `open on each of ${all.length} nodes (a CPU figure at or below zero, or a ratio above 1, is within the noise)`,
    );
  } finally {
    await cluster.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
