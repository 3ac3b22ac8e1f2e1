/**
 * Sending fuzzed HTTP requests: raw over TCP (any bytes, written in pieces with gaps, then half-closed so
 * the node answers and closes), or through undici's keep-alive pool for well-formed ones. Either way the
 * outcome is the statuses the node answered (a raw connection may carry several), how the connection
 * ended, and the start of any 5xx body.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import net from 'node:net';
import { Pool } from 'undici';
import type { HttpCase } from './http-gen.js';

export interface HttpOutcome {
  /** Final (non-1xx) statuses, in order. */
  readonly statuses: readonly number[];
  /** `server`: the node closed the connection; `timeout`: it did neither answer nor close in time. */
  readonly ended: 'server' | 'timeout' | 'error' | 'answered';
  readonly error?: string;
  /** The start of the first 5xx answer's body. */
  readonly body5xx?: string;
  /** The start of the first answer's body. */
  readonly firstBody?: string;
  readonly ms: number;
}

/** Statuses of the HTTP/1.1 responses in `buf` (bodies skipped by length or chunks). */
export function parseResponses(
  buf: Buffer,
  head: boolean,
): { statuses: number[]; body5xx?: string; firstBody?: string } {
  const statuses: number[] = [];
  let body5xx: string | undefined;
  let firstBody: string | undefined;
  let off = 0;
  while (off < buf.length) {
    const end = buf.indexOf('\r\n\r\n', off);
    if (end < 0) break;
    const text = buf.toString('latin1', off, end);
    const m = /^HTTP\/\d\.\d (\d{3})/.exec(text);
    if (m === null) break;
    const status = Number(m[1]);
    off = end + 4;
    if (status >= 100 && status < 200) continue;
    statuses.push(status);
    const cl = /\r\ncontent-length:\s*(\d+)/i.exec(text);
    if (status >= 500 && body5xx === undefined) body5xx = buf.toString('utf8', off, Math.min(buf.length, off + 300));
    if (statuses.length === 1) firstBody = head ? '' : buf.toString('utf8', off, Math.min(buf.length, off + 300));
    if (head || status === 204 || status === 304) continue;
    if (cl !== null) {
      off += Number(cl[1]);
      continue;
    }
    if (!/\r\ntransfer-encoding:\s*chunked/i.test(text)) break;
    for (;;) {
      const le = buf.indexOf('\r\n', off);
      if (le < 0)
        return {
          statuses,
          ...(body5xx === undefined ? {} : { body5xx }),
          ...(firstBody === undefined ? {} : { firstBody }),
        };
      const size = parseInt(buf.toString('latin1', off, le), 16);
      if (!Number.isFinite(size))
        return {
          statuses,
          ...(body5xx === undefined ? {} : { body5xx }),
          ...(firstBody === undefined ? {} : { firstBody }),
        };
      off = le + 2;
      if (size === 0) {
        const te = buf.indexOf('\r\n\r\n', off - 2);
        off = te < 0 ? buf.length : te + 4;
        break;
      }
      off += size + 2;
    }
  }
  return { statuses, ...(body5xx === undefined ? {} : { body5xx }), ...(firstBody === undefined ? {} : { firstBody }) };
}

/** Writes the bytes (pieces separated by the gaps), half-closes, and collects the answers until the node closes. */
export async function sendRaw(
  port: number,
  writes: readonly Buffer[],
  gapsMs: readonly number[],
  head: boolean,
  timeoutMs: number,
): Promise<HttpOutcome> {
  const t0 = Date.now();
  const s = net.connect(port, '127.0.0.1');
  s.setNoDelay(true);
  const chunks: Buffer[] = [];
  let error: string | undefined;
  s.on('data', (d: Buffer) => chunks.push(d));
  const closed = new Promise<void>((resolve) => s.on('close', () => resolve()));
  s.on('error', (e: NodeJS.ErrnoException) => {
    error = e.code ?? e.message;
  });
  const connected = await new Promise<boolean>((resolve) => {
    s.once('connect', () => resolve(true));
    s.once('error', () => resolve(false));
  });
  if (!connected) return { statuses: [], ended: 'error', error: error ?? 'connect failed', ms: Date.now() - t0 };
  for (let i = 0; i < writes.length; i++) {
    if (s.destroyed) break;
    const gap = gapsMs[i] ?? 0;
    if (i > 0 && gap > 0) await sleep(gap);
    if (!s.destroyed) s.write(writes[i] as Buffer);
  }
  if (!s.destroyed) s.end();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    closed.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (timedOut) s.destroy();
  const parsed = parseResponses(Buffer.concat(chunks), head);
  return {
    statuses: parsed.statuses,
    ended: timedOut ? 'timeout' : error !== undefined && parsed.statuses.length === 0 ? 'error' : 'server',
    ...(error === undefined ? {} : { error }),
    ...(parsed.body5xx === undefined ? {} : { body5xx: parsed.body5xx }),
    ...(parsed.firstBody === undefined ? {} : { firstBody: parsed.firstBody }),
    ms: Date.now() - t0,
  };
}

/** Headers an HTTP client sets itself (or refuses): left out of client requests. */
const CLIENT_OWNED = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'expect',
]);

/** Thrown when the client refuses a request before sending it (the case then goes raw). */
export class ClientRefused extends Error {}

/** Well-formed requests over keep-alive connections, one pool per node. */
export class ClientSender {
  private readonly pools = new Map<string, Pool>();

  constructor(private readonly timeoutMs: number) {}

  private pool(origin: string): Pool {
    let p = this.pools.get(origin);
    if (p === undefined) {
      p = new Pool(origin, {
        connections: 16,
        pipelining: 1,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        keepAliveTimeout: 4000,
      });
      this.pools.set(origin, p);
    }
    return p;
  }

  async send(origin: string, c: HttpCase): Promise<HttpOutcome> {
    const t0 = Date.now();
    const headers: string[] = [];
    for (const [k, v] of c.headers) if (!CLIENT_OWNED.has(k.toLowerCase())) headers.push(k, v);
    let res;
    try {
      res = await this.pool(origin).request({
        path: c.target,
        method: c.method,
        headers,
        ...(c.body === undefined || c.body.length === 0 ? {} : { body: c.body }),
        // Bounds the time in the pool's queue too (headersTimeout starts only once a connection takes it).
        signal: AbortSignal.timeout(this.timeoutMs * 2),
      });
    } catch (err) {
      const e = err as Error & { code?: string };
      if (e.code === 'UND_ERR_INVALID_ARG' || e.code === 'UND_ERR_NOT_SUPPORTED' || e.name === 'InvalidArgumentError') {
        // The pool may be left unusable by a refused request: start a new one.
        const p = this.pools.get(origin);
        this.pools.delete(origin);
        void p?.destroy().catch(() => {});
        throw new ClientRefused(e.message);
      }
      const timeout = e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT';
      return { statuses: [], ended: timeout ? 'timeout' : 'error', error: e.code ?? e.message, ms: Date.now() - t0 };
    }
    let firstBody: string | undefined;
    try {
      firstBody = (await res.body.text()).slice(0, 300);
    } catch {
      // the answer's status is what counts
    }
    return {
      statuses: [res.statusCode],
      ended: 'answered',
      ...(firstBody === undefined ? {} : { firstBody, ...(res.statusCode >= 500 ? { body5xx: firstBody } : {}) }),
      ms: Date.now() - t0,
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.destroy()));
    this.pools.clear();
  }
}

/** A plain serialisation of a case (for one the HTTP client refused to send). */
export function plainBytes(c: HttpCase): Buffer {
  let s = `${c.method} ${c.target} HTTP/1.1\r\n`;
  for (const [k, v] of c.headers) if (k.toLowerCase() !== 'content-length') s += `${k}: ${v}\r\n`;
  const body = c.body ?? Buffer.alloc(0);
  s += `content-length: ${body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(s, 'latin1'), body]);
}
