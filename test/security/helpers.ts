/**
 * Helpers of the peer-credential tests: requests signed (or not) like a node would sign them, a recording
 * HTTP proxy that captures what one node sends another (to replay it), and metric parsing.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { PeerAuth, PeerKeys, loadSecretFile, type SignHeaders } from '../../src/net/peer-auth.js';

export interface Res {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly text: string;
}

/** One HTTP request with exactly `body` as its bytes and `headers`; parsed JSON answer. */
export async function send(
  url: string,
  method: string,
  body: string | undefined,
  headers: Record<string, string> = {},
): Promise<Res> {
  const h: Record<string, string> = { ...headers };
  if (body !== undefined) h['content-type'] = 'application/json';
  const res = await fetch(url, { method, headers: h, body, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  let parsed: Record<string, unknown>;
  try {
    parsed = text.length > 0 ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    parsed = { text };
  }
  return { status: res.status, body: parsed, text };
}

/** A signer holding the cluster's secret file, as a peer named `id`. */
export function signerFor(secretFile: string, id = 'test-peer'): SignHeaders {
  const auth = new PeerAuth({ id, keys: loadSecretFile(secretFile).keys });
  return (method, path, body) => auth.signHeaders(method, path, body);
}

/** A signer holding some other secret: its signatures are wrong for the cluster. */
export function wrongSigner(id = 'intruder'): SignHeaders {
  const auth = new PeerAuth({ id, keys: PeerKeys.fromBuffers([randomBytes(32)]) });
  return (method, path, body) => auth.signHeaders(method, path, body);
}

/** A signer with the right secret whose clock is `skewMs` off. */
export function skewedSigner(secretFile: string, skewMs: number): SignHeaders {
  const auth = new PeerAuth({ id: 'skewed', keys: loadSecretFile(secretFile).keys, now: () => Date.now() + skewMs });
  return (method, path, body) => auth.signHeaders(method, path, body);
}

/** The refusal counter of a node's /metrics, by `channel/reason`. */
export async function refusals(baseUrl: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const out = new Map<string, number>();
  const re = /^quorumkv_peer_auth_refused_total\{([^}]*)\} (\d+)/gm;
  for (const m of text.matchAll(re)) {
    const labels = Object.fromEntries(
      [...(m[1] as string).matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1] as string, l[2] as string]),
    );
    out.set(`${labels.channel}/${labels.reason}`, (out.get(`${labels.channel}/${labels.reason}`) ?? 0) + Number(m[2]));
  }
  return out;
}

export interface Captured {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** The target's answer, once it came (undefined: not delivered, or no answer yet). */
  status?: number;
}

/**
 * An HTTP proxy standing in the wire between two nodes: forwards every request to `target` unchanged and
 * keeps a copy of it, so a test can replay what one node sent another.
 */
export class RecordingProxy {
  private constructor(
    private readonly server: http.Server,
    readonly port: number,
    readonly captured: Captured[],
  ) {}

  static async start(target: { host: string; port: number }, port = 0): Promise<RecordingProxy> {
    const agent = new http.Agent({ keepAlive: true });
    const captured: Captured[] = [];
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
        const c: Captured = { method: req.method ?? 'GET', url: req.url ?? '/', headers, body: body.toString() };
        captured.push(c);
        const up = http.request(
          { host: target.host, port: target.port, method: req.method, path: req.url, headers: req.headers, agent },
          (r) => {
            c.status = r.statusCode;
            res.writeHead(r.statusCode ?? 502, r.headers);
            r.pipe(res);
          },
        );
        up.on('error', () => res.destroy());
        up.end(body);
      });
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
    const addr = server.address();
    assert.ok(addr !== null && typeof addr === 'object');
    return new RecordingProxy(server, addr.port, captured);
  }

  /**
   * The first captured request to `path` (without query) that the target accepted (2xx) and `accept` likes:
   * one that really was delivered, so sending it again is a replay.
   */
  find(path: string, accept: (c: Captured) => boolean = () => true): Captured | undefined {
    return this.captured.find(
      (c) => c.url.split('?')[0] === path && c.status !== undefined && c.status < 300 && accept(c),
    );
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Replays a captured request against `baseUrl` byte for byte (its credential headers included). */
export function replay(baseUrl: string, c: Captured, bodyOverride?: string): Promise<Res> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(c.headers)) {
    if (k.startsWith('x-') || k === 'content-type') headers[k] = v;
  }
  return send(baseUrl + c.url, c.method, bodyOverride ?? (c.body.length > 0 ? c.body : undefined), headers);
}

export async function eventually(fn: () => Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
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

export const CREDENTIAL_REQUIRED = { error: 'Peer credential required' };
export const CREDENTIAL_INVALID = { error: 'Invalid peer credential' };
