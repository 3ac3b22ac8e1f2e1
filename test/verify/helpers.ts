/** Shared helpers of the verify tests: a cluster in a temp dir, raw HTTP calls and polling. */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VerifyCluster } from '../../src/verify/cluster.js';

export interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

export async function call(
  base: string,
  method: string,
  url: string,
  body?: unknown,
  timeoutMs = 5000,
): Promise<Answer> {
  const res = await fetch(base + url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    redirect: 'manual',
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = { text };
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

export const put = (base: string, key: string, value: unknown) => call(base, 'PUT', `/kvs/${key}`, { value });
export const get = (base: string, key: string, consistency = 'linearizable') =>
  call(base, 'GET', `/kvs/${key}?consistency=${consistency}`);

/** Polls `fn` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(
    `${what}: not within ${timeoutMs} ms${last instanceof Error ? ` (last error: ${last.message})` : ''}`,
  );
}

/** Fast timings: 20 ms ticks, elections after 200–400 ms, 1 s request timeout. */
export async function startVerifyCluster(nodes: number): Promise<{ cluster: VerifyCluster; cleanup(): Promise<void> }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-verify-test-'));
  let cluster: VerifyCluster;
  try {
    cluster = await VerifyCluster.start({ nodes, dir, tickMs: 20, electionTicks: 10, requestTimeoutMs: 1000 });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    cluster,
    cleanup: async () => {
      await cluster.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A write through any running node that succeeds (retried until it does). */
export async function writeOk(cluster: VerifyCluster, key: string, value: unknown, timeoutMs = 10_000): Promise<void> {
  await eventually(
    `write ${key}`,
    async () => {
      for (const id of cluster.ids) {
        if (!cluster.isRunning(id)) continue;
        const r = await call(cluster.url(id), 'PUT', `/kvs/${key}`, { value }, 2000).catch(() => undefined);
        if (r !== undefined && (r.status === 200 || r.status === 201)) return true;
      }
      return undefined;
    },
    timeoutMs,
  );
}
