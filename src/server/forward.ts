/**
 * Follower → leader forwarding over HTTP keep-alive connections. A forwarded request carries
 * `x-quorumkv-forwarded: <from id>` so that it is never forwarded twice, and the peer credential headers
 * (see src/net/peer-auth.ts): the receiver refuses a forwarded request without a valid signature.
 */
import http from 'node:http';
import https from 'node:https';
import type { SignHeaders } from '../net/peer-auth.js';
import { clientTlsOptions, type TlsMaterial } from '../net/tls-config.js';
import type { NodeId } from '../raft/types.js';
import type { HostPort } from './config.js';

export const FORWARDED_HEADER = 'x-quorumkv-forwarded';

export interface ForwardResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

/** The request was never sent (connection refused): it is safe to retry it elsewhere. */
export class NotSentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotSentError';
  }
}

export class Forwarder {
  private readonly agent: http.Agent;
  private readonly scheme: 'http' | 'https';
  forwarded = 0;

  constructor(
    private readonly selfId: NodeId,
    private readonly peerHttp: ReadonlyMap<NodeId, HostPort>,
    /** Signs each request (none: a node without a cluster secret). */
    private readonly sign: SignHeaders = () => ({}),
    /** TLS on: the nodes serve HTTPS; the leader is verified against the cluster CA and sees our certificate. */
    tls?: TlsMaterial,
  ) {
    const agentOptions = { keepAlive: true, maxSockets: 256, keepAliveMsecs: 10_000 };
    this.scheme = tls === undefined ? 'http' : 'https';
    this.agent =
      tls === undefined ? new http.Agent(agentOptions) : new https.Agent({ ...agentOptions, ...clientTlsOptions(tls) });
  }

  urlOf(id: NodeId): string | undefined {
    const a = this.peerHttp.get(id);
    return a === undefined ? undefined : `${this.scheme}://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
  }

  /** Sends one request to `to` and buffers the answer; rejects on network errors or after `timeoutMs`. */
  request(
    to: NodeId,
    method: string,
    path: string,
    body: string | undefined,
    timeoutMs: number,
    extraHeaders: Readonly<Record<string, string>> = {},
  ): Promise<ForwardResponse> {
    const addr = this.peerHttp.get(to);
    if (addr === undefined) return Promise.reject(new NotSentError(`no HTTP address for node ${to}`));
    this.forwarded++;
    return new Promise<ForwardResponse>((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = {
        ...extraHeaders,
        [FORWARDED_HEADER]: String(this.selfId),
        ...this.sign(method, path, body),
      };
      if (body !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = Buffer.byteLength(body);
      }
      const req = (this.scheme === 'https' ? https : http).request(
        { host: addr.host, port: addr.port, method, path, headers, agent: this.agent, timeout: timeoutMs },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('forwarding timed out')));
      req.on('error', (err: NodeJS.ErrnoException) => {
        reject(err.code === 'ECONNREFUSED' ? new NotSentError(err.message) : err);
      });
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
