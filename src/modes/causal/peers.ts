/**
 * Internal traffic between causal replicas: small JSON POST/PUT/DELETE requests with a short timeout, so a
 * request never waits long on an unreachable peer, and the view with per-peer health bookkeeping. Every
 * internal request carries the replica's peer credential (src/net/peer-auth.ts) when it has a secret.
 */
import { fetch as undiciFetch } from 'undici';
import type { SignHeaders } from '../../net/peer-auth.js';
import type { PeerTls } from '../common/peer-tls.js';

/** Header naming the sending replica on internal requests (used to simulate partitions). */
export const FROM_HEADER = 'x-qkv-from';

export interface PeerReply {
  readonly status: number;
  readonly body: unknown;
}

/** Sends one JSON request to a peer; resolves undefined on a network error or timeout. */
export async function peerRequest(
  self: string,
  peer: string,
  method: 'POST' | 'PUT' | 'DELETE' | 'GET',
  path: string,
  body: unknown,
  timeoutMs: number,
  sign?: SignHeaders,
  /** TLS: https, with the replica's agent (see ../common/peer-tls.ts). */
  tls?: PeerTls,
): Promise<PeerReply | undefined> {
  try {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const init = {
      method,
      headers: { 'content-type': 'application/json', [FROM_HEADER]: self, ...sign?.(method, path, payload) },
      body: payload,
      signal: AbortSignal.timeout(timeoutMs),
    };
    const res =
      tls?.dispatcher === undefined
        ? await fetch(`http://${peer}${path}`, init)
        : await undiciFetch(`${tls.scheme}://${peer}${path}`, { ...init, dispatcher: tls.dispatcher });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text.length > 0 ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, body: parsed };
  } catch {
    return undefined;
  }
}

/** `IP:PORT` (or `host:PORT`) with a valid port. */
export function isSocketAddress(s: unknown): s is string {
  if (typeof s !== 'string') return false;
  const m = /^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(\d{1,5})$/.exec(s);
  if (m === null) return false;
  const port = Number(m[2]);
  return port > 0 && port < 65536;
}

/** Splits `IP:PORT` into host and port. */
export function splitAddress(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  let host = addr.slice(0, i);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, port: Number(addr.slice(i + 1)) };
}

export interface PeerHealth {
  /** Consecutive failed exchanges. */
  failures: number;
  /** Date.now() of the last successful exchange, 0 if none. */
  lastOk: number;
  /** An exchange is under way (the health loop does not stack them). */
  busy: boolean;
  /** The peer's incarnation (process lifetime) last seen; undefined before the first contact. */
  incarnation: string | undefined;
  /** The next exchange asks for the peer's whole store (first contact, or the peer restarted). */
  needFull: boolean;
  /**
   * The next answer to this peer's exchange sends our whole store: some replica restarted, and the asker may
   * lack writes hidden behind a sequence number it reused (it cannot tell if it never met the old process).
   */
  sendFull: boolean;
}

/**
 * The view (replicas this one broadcasts to and considers alive) plus every address ever known, so a replica
 * removed after a failure or a partition is noticed and re-added when it answers again.
 */
export class View {
  private readonly members = new Set<string>();
  private readonly known = new Map<string, PeerHealth>();

  constructor(
    readonly self: string,
    initial: readonly string[],
  ) {
    this.members.add(self);
    for (const a of initial) this.add(a);
  }

  list(): string[] {
    return [...this.members].sort();
  }

  has(addr: string): boolean {
    return this.members.has(addr);
  }

  /** Adds to the view; false if it was there already. */
  add(addr: string): boolean {
    if (addr !== this.self && !this.known.has(addr))
      this.known.set(addr, {
        failures: 0,
        lastOk: 0,
        busy: false,
        incarnation: undefined,
        needFull: true,
        sendFull: false,
      });
    if (this.members.has(addr)) return false;
    this.members.add(addr);
    return true;
  }

  /** Removes from the view (the address stays known); false if it was not there. */
  remove(addr: string): boolean {
    return this.members.delete(addr);
  }

  /** Peers in the view, self excluded. */
  peers(): string[] {
    return this.list().filter((a) => a !== this.self);
  }

  /** Every address known apart from self, in the view or not. */
  knownPeers(): string[] {
    return [...this.known.keys()].sort();
  }

  health(addr: string): PeerHealth | undefined {
    return this.known.get(addr);
  }
}
