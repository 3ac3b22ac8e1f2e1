/**
 * Causal mode benchmark: `npm run bench:causal -- [--seconds 3] [--concurrency 8] [--replicas 3] [--keys 100]`.
 *
 * Starts the replicas as child processes on free ports, runs closed-loop clients that each keep a session
 * (echoing causal metadata) and alternate a PUT and a GET of random keys at a random replica — so most reads
 * depend on writes made elsewhere — and reports throughput, latency percentiles, the share of 503s for
 * unmet dependencies, and the size of the causal metadata at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { request, Agent } from 'node:http';
import { freeNodePort } from '../src/net/ports.js';
import { clusterSecret } from '../src/modes/common/cluster.js';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'hdr-histogram-js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '8' },
    replicas: { type: 'string', default: '3' },
    keys: { type: 'string', default: '100' },
  },
});
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const replicas = Number(values.replicas);
const keys = Number(values.keys);
const MAIN = fileURLToPath(new URL('../src/modes/causal/main.js', import.meta.url));
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
// The replicas authenticate each other as real clusters do (a temporary cluster secret, removed at exit).
const secret = clusterSecret();
process.on('exit', () => secret.dispose());

function startReplica(address: string, view: string[]): Promise<ChildProcess> {
  const proc = spawn(process.execPath, [MAIN], {
    env: { ...process.env, ...secret.env, SOCKET_ADDRESS: address, VIEW: view.join(',') },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('listening on')) resolve(proc);
    });
    proc.once('exit', (code) => reject(new Error(`replica ${address} exited with ${code}`)));
  });
}

function send(
  address: string,
  method: string,
  path: string,
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      `http://${address}${path}`,
      {
        method,
        agent,
        timeout: 5000,
        headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(payload);
  });
}

async function main(): Promise<void> {
  const addrs: string[] = [];
  while (addrs.length < replicas) addrs.push(`127.0.0.1:${await freeNodePort()}`);
  const procs = await Promise.all(addrs.map((a) => startReplica(a, addrs)));
  const puts = build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
  const gets = build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
  let unavailable = 0;
  let errors = 0;
  let maxMetaBytes = 0;
  const deadline = Date.now() + seconds * 1000;
  const client = async (c: number): Promise<void> => {
    let meta: unknown = null;
    let n = 0;
    while (Date.now() < deadline) {
      const isPut = n % 2 === 0;
      const at = addrs[Math.floor(Math.random() * addrs.length)]!;
      const key = `k${Math.floor(Math.random() * keys)}`;
      const t0 = process.hrtime.bigint();
      try {
        const r = isPut
          ? await send(at, 'PUT', `/kvs/${key}`, { value: `c${c}-${n}`, 'causal-metadata': meta })
          : await send(at, 'GET', `/kvs/${key}`, { 'causal-metadata': meta });
        const us = Number((process.hrtime.bigint() - t0) / 1000n);
        if (r.status === 503) unavailable++;
        else {
          (isPut ? puts : gets).recordValue(Math.max(1, us));
          if (r.body['causal-metadata'] !== undefined) meta = r.body['causal-metadata'];
          maxMetaBytes = Math.max(maxMetaBytes, JSON.stringify(meta).length);
          n++;
        }
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, c) => client(c)));
  for (const p of procs) if (p.pid !== undefined) process.kill(p.pid, 'SIGTERM');
  const ms = (h: typeof puts, p: number): string => (h.getValueAtPercentile(p) / 1000).toFixed(2);
  const total = puts.totalCount + gets.totalCount;
  console.log(`causal: ${replicas} replicas, ${concurrency} clients, ${seconds} s, ${keys} keys`);
  console.log(`  ops/s ${(total / seconds).toFixed(0)} (puts ${puts.totalCount}, gets ${gets.totalCount})`);
  console.log(`  put ms p50 ${ms(puts, 50)} p99 ${ms(puts, 99)} max ${ms(puts, 100)}`);
  console.log(`  get ms p50 ${ms(gets, 50)} p99 ${ms(gets, 99)} max ${ms(gets, 100)}`);
  console.log(
    `  503 (dependencies not yet applied) ${unavailable} (${((100 * unavailable) / Math.max(1, total + unavailable)).toFixed(2)}%), errors ${errors}`,
  );
  console.log(`  largest causal metadata ${maxMetaBytes} bytes after ${puts.totalCount} writes`);
  agent.destroy();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
