import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalCluster, type LocalClusterOptions } from '../../src/server/local-cluster.js';

export interface Res {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
  ms: number;
}

/** One HTTP request with a JSON body (or a raw string body), parsed JSON answer. */
export async function call(
  base: string,
  method: string,
  url: string,
  body?: unknown,
  opts: { raw?: string; contentType?: string; timeoutMs?: number; redirect?: 'manual' | 'follow' } = {},
): Promise<Res> {
  const t0 = Date.now();
  const headers: Record<string, string> = {};
  let payload: string | undefined;
  if (opts.raw !== undefined) payload = opts.raw;
  else if (body !== undefined) payload = JSON.stringify(body);
  if (payload !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
  const res = await fetch(base + url, {
    method,
    headers,
    body: payload,
    redirect: opts.redirect ?? 'manual',
    signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
  });
  const text = await res.text();
  let parsed: Record<string, unknown>;
  try {
    parsed = text.length > 0 ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    parsed = { text };
  }
  return { status: res.status, body: parsed, headers: res.headers, ms: Date.now() - t0 };
}

export const put = (base: string, key: string, body: unknown) =>
  call(base, 'PUT', `/kvs/${encodeURIComponent(key)}`, body);
export const get = (base: string, key: string, consistency?: string) =>
  call(base, 'GET', `/kvs/${encodeURIComponent(key)}${consistency ? `?consistency=${consistency}` : ''}`);
export const del = (base: string, key: string) => call(base, 'DELETE', `/kvs/${encodeURIComponent(key)}`);

/** Fast timings: 20 ms ticks, elections in 200–400 ms, 1.5 s request timeout. */
export const FAST: Omit<LocalClusterOptions, 'nodes' | 'dir'> = {
  tickMs: 20,
  electionTicks: 10,
  requestTimeoutMs: 1500,
  logLevel: 'error',
};

export async function startCluster(
  opts: Partial<LocalClusterOptions> = {},
): Promise<{ cluster: LocalCluster; dir: string; cleanup(): Promise<void> }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'quorumkv-test-'));
  const cluster = await LocalCluster.start({ nodes: 3, dir, ...FAST, ...opts });
  return {
    cluster,
    dir,
    async cleanup() {
      await cluster.stopAll();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Retries `fn` until it returns true or the time is up. */
export async function eventually(fn: () => Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if (await fn()) return;
    } catch {
      // retry
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}
