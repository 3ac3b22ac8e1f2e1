/** Test helpers for causal mode: free ports, replicas as child processes, a small JSON client. */
import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { freeNodePort } from '../../../src/net/ports.js';
import { fileURLToPath } from 'node:url';

export const MAIN = fileURLToPath(new URL('../../../src/modes/causal/main.js', import.meta.url));

/** Fast tunables so failure detection and anti-entropy fit in a unit-test budget. */
export const FAST_ENV: Record<string, string> = {
  QKV_CAUSAL_SYNC_MS: '100',
  QKV_CAUSAL_PEER_TIMEOUT_MS: '1000',
  QKV_CAUSAL_FAIL_THRESHOLD: '4',
  QKV_CAUSAL_DEP_WAIT_MS: '150',
};

/** A port for a replica (outside the ephemeral range, so a restarted replica finds it free again). */
export { freeNodePort as freePort };

export async function freeAddresses(n: number): Promise<string[]> {
  const out: string[] = [];
  while (out.length < n) {
    const a = `127.0.0.1:${await freeNodePort()}`;
    if (!out.includes(a)) out.push(a);
  }
  return out;
}

export interface ReplicaProcess {
  readonly address: string;
  readonly url: string;
  readonly proc: ChildProcess;
  /** Kills the process (SIGKILL by default) and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Spawns `node dist/src/modes/causal/main.js` and waits until it serves. */
export async function spawnReplica(
  address: string,
  view: readonly string[],
  env: Record<string, string> = {},
): Promise<ReplicaProcess> {
  const proc = spawn(process.execPath, [MAIN], {
    env: { ...process.env, ...FAST_ENV, ...env, SOCKET_ADDRESS: address, VIEW: view.join(',') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    // Generous: the shared 2-core machine can be very loaded. A replica that does not start is killed.
    const timer = setTimeout(() => {
      if (proc.pid !== undefined && proc.exitCode === null) process.kill(proc.pid, 'SIGKILL');
      reject(new Error(`replica ${address} did not start within 40 s: ${stderr}`));
    }, 40_000);
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`replica ${address} exited with ${code}: ${stderr}`));
    });
  });
  return {
    address,
    url: `http://${address}`,
    proc,
    kill: async (signal: NodeJS.Signals = 'SIGKILL') => {
      if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) process.kill(proc.pid, signal);
      await exited;
    },
  };
}

export async function spawnCluster(n: number, env: Record<string, string> = {}): Promise<ReplicaProcess[]> {
  const addrs = await freeAddresses(n);
  const started = await Promise.allSettled(addrs.map((a) => spawnReplica(a, addrs, env)));
  const ok = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const bad = started.find((s) => s.status === 'rejected');
  if (bad !== undefined) {
    await Promise.all(ok.map((r) => r.kill()));
    throw (bad as PromiseRejectedResult).reason;
  }
  return ok;
}

export interface Reply {
  readonly status: number;
  // Test-side view of a JSON reply.
  readonly body: Record<string, unknown>;
}

/**
 * One JSON request over node:http (fetch refuses a body on GET, which the causal API uses).
 * Also returns the response headers.
 */
export async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  timeoutMs = 5000,
): Promise<Reply> {
  const full = await callRaw(
    base,
    method,
    path,
    body === undefined ? undefined : JSON.stringify(body),
    headers,
    timeoutMs,
  );
  return { status: full.status, body: full.body };
}

export async function callRaw(
  base: string,
  method: string,
  path: string,
  payload: string | undefined,
  headers: Record<string, string> = {},
  timeoutMs = 5000,
): Promise<Reply & { headers: Record<string, string | string[] | undefined> }> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        headers:
          payload === undefined
            ? headers
            : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)), ...headers },
        timeout: timeoutMs,
        agent: keepAlive,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          let parsed: Record<string, unknown>;
          try {
            parsed = text.length > 0 ? (JSON.parse(text) as Record<string, unknown>) : {};
          } catch {
            parsed = { text };
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, headers: res.headers });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

const keepAlive = new Agent({ keepAlive: true, maxSockets: 64 });

/** Polls `f` until it returns true or the deadline passes; returns the last result. */
export async function eventually(f: () => Promise<boolean>, timeoutMs = 10_000, everyMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    try {
      if (await f()) return true;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
