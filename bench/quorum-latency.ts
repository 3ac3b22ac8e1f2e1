/**
 * Quorum-mode write latency from one keep-alive client: `npm run bench:quorum-latency -- [--writes 2000]
 * [--followers 5] [--quorums 1,5] [--min-delay 0.1] [--max-delay 1] [--no-zero] [--in-process]`.
 *
 * For each W it starts a leader and the followers as child processes on free ports, sends sequential
 * `POST /write` requests over one keep-alive connection, and prints the median, p90 and p99 latency next to
 * what the order statistics predict for the simulated delay alone: with N followers and uniform [a, b]
 * one-way delays, the W-th fastest of N draws has mean a + (b - a) * W / (N + 1). A run with zero delay
 * (skip it with --no-zero) gives the cost of everything else: HTTP, JSON, replication round trips.
 *
 * `--in-process` runs the leader, the followers and the client in this one process (still over HTTP on
 * loopback, with the cluster secret): no process has to be scheduled on a CPU to answer, so on a loaded
 * machine it isolates what the simulated delay adds from the wake-ups of seven processes on two cores.
 */
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { clusterSecret } from '../src/modes/common/cluster.js';
import { freePorts, spawnModeNode, type SpawnedNode } from '../src/modes/common/spawn.js';
import { startQuorumNode } from '../src/modes/quorum/index.js';

const { values } = parseArgs({
  options: {
    writes: { type: 'string', default: '2000' },
    warmup: { type: 'string', default: '300' },
    followers: { type: 'string', default: '5' },
    quorums: { type: 'string', default: '1,5' },
    'min-delay': { type: 'string', default: '0.1' },
    'max-delay': { type: 'string', default: '1' },
    'no-zero': { type: 'boolean', default: false },
    'in-process': { type: 'boolean', default: false },
  },
});
const writes = Number(values.writes);
const warmup = Number(values.warmup);
const followers = Number(values.followers);
const quorums = (values.quorums ?? '1').split(',').map(Number);
const minDelay = Number(values['min-delay']);
const maxDelay = Number(values['max-delay']);
const secret = clusterSecret();
process.on('exit', () => secret.dispose());

async function startInProcess(w: number, min: number, max: number): Promise<{ leader: string; stop(): Promise<void> }> {
  const [lp, ...fps] = await freePorts(followers + 1);
  const fs = await Promise.all(
    fps.map((port) =>
      startQuorumNode({
        role: 'follower',
        port,
        leaderUrl: `http://127.0.0.1:${lp}`,
        catchUpTimeoutMs: 500,
        clusterSecretFile: secret.file,
      }),
    ),
  );
  const leader = await startQuorumNode({
    role: 'leader',
    port: lp,
    followers: fs.map((f) => f.url),
    writeQuorum: w,
    minDelay: min,
    maxDelay: max,
    clusterSecretFile: secret.file,
  });
  return {
    leader: leader.url,
    stop: async () => {
      await leader.close();
      await Promise.all(fs.map((f) => f.close()));
    },
  };
}

async function startCluster(w: number, min: number, max: number): Promise<{ leader: string; stop(): Promise<void> }> {
  if (values['in-process']) return startInProcess(w, min, max);
  const [lp, ...fps] = await freePorts(followers + 1);
  const env = { ...secret.env, WRITE_QUORUM: String(w), MIN_DELAY: String(min), MAX_DELAY: String(max) };
  const fs = await Promise.all(
    fps.map((p) =>
      spawnModeNode('quorum', ['--role', 'follower', '--port', String(p), '--leader', `127.0.0.1:${lp}`], env),
    ),
  );
  const leader = await spawnModeNode(
    'quorum',
    ['--role', 'leader', '--port', String(lp), '--followers', fps.map((p) => `127.0.0.1:${p}`).join(',')],
    env,
  );
  const nodes: SpawnedNode[] = [leader, ...fs];
  return { leader: leader.url, stop: async () => void (await Promise.all(nodes.map((n) => n.stop()))) };
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function measure(w: number, min: number, max: number): Promise<Record<string, number | string>> {
  const cluster = await startCluster(w, min, max);
  // One client, one connection, kept alive between requests.
  const agent = new Agent({ connections: 1, pipelining: 1, keepAliveTimeout: 60_000 });
  const lat: number[] = [];
  try {
    for (let i = 0; i < warmup + writes; i++) {
      const body = JSON.stringify({ key: `k${i % 100}`, value: i });
      const t0 = process.hrtime.bigint();
      const res = await request(`${cluster.leader}/write`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        dispatcher: agent,
      });
      await res.body.text();
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (res.statusCode !== 200) throw new Error(`write answered ${res.statusCode}`);
      if (i >= warmup) lat.push(ms);
    }
  } finally {
    await agent.close();
    await cluster.stop();
  }
  lat.sort((a, b) => a - b);
  const predicted = min + ((max - min) * w) / (followers + 1);
  return {
    W: w,
    delay: `${min}-${max} ms`,
    writes,
    p50_ms: Number(percentile(lat, 50).toFixed(3)),
    p90_ms: Number(percentile(lat, 90).toFixed(3)),
    p99_ms: Number(percentile(lat, 99).toFixed(3)),
    predicted_delay_ms: Number(predicted.toFixed(3)),
  };
}

async function main(): Promise<void> {
  process.stdout.write(
    `# one keep-alive client, ${writes} sequential writes per W (after ${warmup} warm-up), ${followers} followers, ${values['in-process'] ? 'every node in this process' : 'one process per node'}\n`,
  );
  const rows: Record<string, number | string>[] = [];
  if (!values['no-zero']) {
    for (const w of quorums) rows.push(await measure(w, 0, 0));
  }
  for (const w of quorums) rows.push(await measure(w, minDelay, maxDelay));
  for (const r of rows) process.stdout.write(`${JSON.stringify(r)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
