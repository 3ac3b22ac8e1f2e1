/**
 * Quorum vs eventual trade-off benchmark: `npm run bench:modes -- [--seconds 3] [--concurrency 8]
 * [--min-delay 0.1] [--max-delay 1] [--only quorum-w1,eventual]`.
 *
 * For each configuration it starts a local cluster of child processes on free ports, runs closed-loop
 * writers for the given time, and after every acknowledged write reads the key from another node at once
 * (a random follower in quorum mode, a random other replica in eventual mode). It reports write throughput,
 * write latency percentiles and how often that immediate read was stale (did not show the write yet).
 */
import { parseArgs } from 'node:util';
import { build } from 'hdr-histogram-js';
import { clusterSecret } from '../src/modes/common/cluster.js';
import { freePorts, spawnModeNode, type SpawnedNode } from '../src/modes/common/spawn.js';

interface Config {
  readonly name: string;
  start(): Promise<{ writers: string[]; readers: (writer: string) => string[]; stop(): Promise<void> }>;
  /** Whether the read shows the write just acknowledged. */
  fresh(write: Record<string, unknown>, read: Record<string, unknown>): boolean;
}

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '8' },
    'min-delay': { type: 'string', default: '0.1' },
    'max-delay': { type: 'string', default: '1' },
    followers: { type: 'string', default: '5' },
    only: { type: 'string' },
  },
});
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const followers = Number(values.followers);
// The nodes authenticate each other as real clusters do (a temporary cluster secret, removed at exit).
const secret = clusterSecret();
process.on('exit', () => secret.dispose());
const delayEnv = {
  MIN_DELAY: String(values['min-delay']),
  MAX_DELAY: String(values['max-delay']),
  ...secret.env,
};

async function stopAll(nodes: SpawnedNode[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.stop()));
}

function quorum(w: number): Config {
  return {
    name: `quorum-w${w}`,
    async start() {
      const [lp, ...fps] = await freePorts(followers + 1);
      const leader = await spawnModeNode(
        'quorum',
        ['--role', 'leader', '--port', String(lp), '--followers', fps.map((p) => `127.0.0.1:${p}`).join(',')],
        { ...delayEnv, WRITE_QUORUM: String(w) },
      );
      const fs = await Promise.all(
        fps.map((p) =>
          spawnModeNode(
            'quorum',
            ['--role', 'follower', '--port', String(p), '--leader', `127.0.0.1:${lp}`],
            secret.env,
          ),
        ),
      );
      return {
        writers: [leader.url],
        readers: () => fs.map((f) => f.url),
        stop: () => stopAll([leader, ...fs]),
      };
    },
    fresh: (write, read) => read.version === write.version,
  };
}

function eventual(n: number): Config {
  return {
    name: `eventual-${n}`,
    async start() {
      const ports = await freePorts(n);
      const nodes = await Promise.all(
        ports.map((p, i) =>
          spawnModeNode(
            'eventual',
            [
              '--id',
              `r${i + 1}`,
              '--port',
              String(p),
              '--peers',
              ports
                .filter((q) => q !== p)
                .map((q) => `127.0.0.1:${q}`)
                .join(','),
            ],
            delayEnv,
          ),
        ),
      );
      const urls = nodes.map((x) => x.url);
      return { writers: urls, readers: (w) => urls.filter((u) => u !== w), stop: () => stopAll(nodes) };
    },
    fresh: (write, read) => JSON.stringify(read.timestamp) === JSON.stringify(write.timestamp),
  };
}

async function post(url: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function run(cfg: Config): Promise<Record<string, string | number>> {
  const cluster = await cfg.start();
  const hist = build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
  let ok = 0;
  let failed = 0;
  let stale = 0;
  let reads = 0;
  const end = Date.now() + seconds * 1000;
  const client = async (c: number) => {
    let i = 0;
    while (Date.now() < end) {
      const writer = cluster.writers[(c + i) % cluster.writers.length];
      const key = `bench-${c}-${i++ % 100}`;
      const t0 = performance.now();
      const w = await post(`${writer}/write`, { key, value: i });
      hist.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
      if (w.status !== 200) {
        failed++;
        continue;
      }
      ok++;
      const readers = cluster.readers(writer);
      const reader = readers[Math.floor(Math.random() * readers.length)];
      const r = await fetch(`${reader}/read?key=${encodeURIComponent(key)}`, { signal: AbortSignal.timeout(10_000) });
      const body = (await r.json()) as Record<string, unknown>;
      reads++;
      if (r.status !== 200 || !cfg.fresh(w.body, body)) stale++;
    }
  };
  const t0 = Date.now();
  await Promise.all(Array.from({ length: concurrency }, (_, c) => client(c)));
  const elapsed = (Date.now() - t0) / 1000;
  await cluster.stop();
  const ms = (p: number) => (hist.getValueAtPercentile(p) / 1000).toFixed(2);
  return {
    config: cfg.name,
    writes_per_s: Math.round(ok / elapsed),
    failed,
    p50_ms: ms(50),
    p99_ms: ms(99),
    p999_ms: ms(99.9),
    stale_read_pct: reads === 0 ? 0 : Number(((100 * stale) / reads).toFixed(1)),
  };
}

async function main(): Promise<void> {
  const configs = [quorum(1), quorum(Math.ceil((followers + 1) / 2)), quorum(followers), eventual(3)];
  const only = values.only?.split(',');
  const chosen = only ? configs.filter((c) => only.includes(c.name)) : configs;
  process.stdout.write(
    `# ${seconds}s per config, ${concurrency} clients, delay ${values['min-delay']}-${values['max-delay']} ms, ${followers} followers\n`,
  );
  for (const cfg of chosen) process.stdout.write(`${JSON.stringify(await run(cfg))}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
