/**
 * quorumkv client for the raft-mode HTTP API (../shared/api.md).
 *
 * - Sends each request to the cached preferred endpoint: the leader once known (learnt from 307 redirects,
 *   or from the `leader` id of an answer matched against the endpoints' `/health` node ids), else the last
 *   endpoint that answered.
 * - Follows `307` "Not leader" redirects (Location or `leader_url`) itself, so it can cache the leader.
 * - Fails over to the next endpoint on a connection error, a timeout, a 503 (honouring Retry-After once every
 *   endpoint has failed in a row) or another 5xx, with jittered exponential backoff, bounded attempts and an
 *   overall deadline. Once every endpoint answered 503 with an error or was unreachable (at least one
 *   answering), it retries for a short grace (an election) and then fails with the nodes' own error
 *   ("No quorum", …) instead of running to the deadline.
 * - Every write carries `request_id = <clientId>:<seq>`, the same on every retry of that write, so a write
 *   retried after a timeout or a leader change is applied once and returns its first outcome.
 * - 4xx answers are final and become typed errors (NotFoundError, PreconditionFailedError, KvError).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import type { NodeId } from '../raft/types.js';
import { clientFetch, type FetchLike } from './fetch.js';
import { KvError, NotFoundError, PreconditionFailedError, UnavailableError } from './errors.js';
import { KvWatch, type WatchOptions } from './watch.js';
import type {
  ClientAuth,
  ClientOptions,
  DeleteResult,
  GetOptions,
  GetResult,
  JsonValue,
  ListItem,
  ListOptions,
  ListResult,
  NodeStatus,
  PutOptions,
  PutResult,
  ResponseMeta,
  TxnRequest,
  TxnResult,
} from './types.js';

type Body = Record<string, JsonValue>;

interface Answer {
  readonly status: number;
  readonly body: Body;
  readonly endpoint: string;
}

interface Call {
  readonly method: 'GET' | 'PUT' | 'DELETE' | 'POST';
  readonly path: string;
  readonly body?: Body;
  /** The key, for NotFoundError. */
  readonly key?: string;
}

function asNumber(v: JsonValue | undefined): number | undefined {
  return typeof v === 'number' ? v : undefined;
}

function isObject(v: unknown): v is Body {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Normalises a base URL (`host:port` gets `http://`; the path and a trailing slash are dropped). */
export function normalizeEndpoint(e: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(e) ? e : `http://${e}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new TypeError(`invalid endpoint: ${e}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError(`invalid endpoint: ${e}`);
  return u.origin;
}

export function encodeKey(key: string): string {
  return encodeURIComponent(key);
}

export class Client {
  readonly endpoints: readonly string[];
  readonly clientId: string;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly deadlineMs: number;
  private readonly backoffMs: number;
  private readonly graceMs: number;
  private seq = 0;
  private preferred: string;
  /** Endpoint of each node id, from `/health`. */
  private readonly idToEndpoint = new Map<NodeId, string>();
  private probing: Promise<void> | undefined;
  private readonly fetch: FetchLike;
  /** The Authorization header every request carries (none without credentials). */
  private readonly authorization: string | undefined;

  constructor(opts: ClientOptions) {
    if (opts.endpoints.length === 0) throw new TypeError('Client needs at least one endpoint');
    this.endpoints = [...new Set(opts.endpoints.map(normalizeEndpoint))];
    this.preferred = this.endpoints[0] as string;
    this.timeoutMs = opts.timeoutMs ?? 4000;
    this.retries = opts.retries ?? 20;
    this.deadlineMs = opts.deadlineMs ?? 15000;
    this.backoffMs = opts.backoffMs ?? 25;
    this.graceMs = opts.unavailableGraceMs ?? 2000;
    this.clientId = opts.clientId ?? randomBytes(8).toString('hex');
    this.fetch = clientFetch(opts);
    this.authorization = authorizationHeader(opts.auth);
  }

  /** The endpoint the next request goes to first (the leader, once known). */
  get currentEndpoint(): string {
    return this.preferred;
  }

  async put(key: string, value: JsonValue, opts: PutOptions = {}): Promise<PutResult> {
    const body: Body = { value, request_id: this.nextRequestId() };
    if (opts.ifVersion !== undefined) body.if_version = opts.ifVersion;
    if (opts.ifValue !== undefined) body.if_value = opts.ifValue;
    const a = await this.call({ method: 'PUT', path: `/kvs/${encodeKey(key)}`, body, key });
    const result = a.body.result;
    if (result !== 'created' && result !== 'replaced') {
      throw new KvError(`unexpected PUT result ${JSON.stringify(result)}`, a.status, a.body);
    }
    return { result, ...meta(a) };
  }

  /** Compare-and-set: writes `next` only if the current value deep-equals `expected`. */
  cas(key: string, expected: JsonValue, next: JsonValue): Promise<PutResult> {
    return this.put(key, next, { ifValue: expected });
  }

  /**
   * The changes to keys under `prefix` as they are committed, as an async iterator (`for await (const c of
   * client.watch('app/'))`), from `sinceRevision` on (default: from now); it reconnects to another node on
   * failure and resumes after the last revision seen. `close()` ends it.
   */
  watch(prefix: string, opts: WatchOptions = {}): KvWatch {
    return new KvWatch(
      {
        endpoints: this.endpoints,
        firstEndpoint: () => this.preferred,
        authorization: this.authorization,
        fetch: this.fetch,
        timeoutMs: this.timeoutMs,
        backoffMs: Math.max(this.backoffMs, 50),
      },
      prefix,
      opts,
    );
  }

  async get(key: string, opts: GetOptions = {}): Promise<GetResult> {
    const q = opts.consistency === undefined ? '' : `?consistency=${encodeURIComponent(opts.consistency)}`;
    const a = await this.call({ method: 'GET', path: `/kvs/${encodeKey(key)}${q}`, key });
    if (!('value' in a.body)) throw new KvError('GET answer without a value', a.status, a.body);
    const applied = asNumber(a.body.applied);
    return {
      value: a.body.value as JsonValue,
      stale: a.body.stale === true,
      ...(applied === undefined ? {} : { applied }),
      ...meta(a),
    };
  }

  async delete(key: string): Promise<DeleteResult> {
    const body: Body = { request_id: this.nextRequestId() };
    const a = await this.call({ method: 'DELETE', path: `/kvs/${encodeKey(key)}`, body, key });
    return { result: 'deleted', ...meta(a) };
  }

  async txn(req: TxnRequest): Promise<TxnResult> {
    const body: Body = {
      compare: req.compare as unknown as JsonValue,
      success: req.success as unknown as JsonValue,
      failure: (req.failure ?? []) as unknown as JsonValue,
      request_id: this.nextRequestId(),
    };
    const a = await this.call({ method: 'POST', path: '/txn', body });
    const succeeded = a.body.succeeded;
    if (typeof succeeded !== 'boolean') throw new KvError('txn answer without "succeeded"', a.status, a.body);
    const results = Array.isArray(a.body.results) ? a.body.results : [];
    return { succeeded, results, raw: a.body, ...meta(a) };
  }

  /** Keys starting with `prefix`, in key order, at most `limit` of them (the node's default if omitted). */
  async list(prefix = '', limit?: number, opts: ListOptions = {}): Promise<ListResult> {
    const q = new URLSearchParams({ prefix });
    if (limit !== undefined) q.set('limit', String(limit));
    if (opts.after !== undefined) q.set('after', opts.after);
    if (opts.consistency !== undefined) q.set('consistency', opts.consistency);
    const a = await this.call({ method: 'GET', path: `/kvs?${q.toString()}` });
    return { items: listItems(a.body), more: a.body.more === true, raw: a.body, ...meta(a) };
  }

  /** `GET /status` of every endpoint, in parallel; unreachable nodes are reported with `ok: false`. */
  async status(): Promise<NodeStatus[]> {
    return Promise.all(
      this.endpoints.map(async (endpoint): Promise<NodeStatus> => {
        try {
          const a = await this.once(endpoint, { method: 'GET', path: '/status' }, Math.min(this.timeoutMs, 2000));
          if (a.status !== 200) return { endpoint, ok: false, error: `HTTP ${a.status}: ${errorText(a.body)}` };
          return { endpoint, ok: true, status: a.body };
        } catch (err) {
          return { endpoint, ok: false, error: describe(err) };
        }
      }),
    );
  }

  /**
   * Any request of the API with the client's leader discovery, failover and credentials (user and role
   * management, see auth.ts); a 4xx answer throws a KvError carrying its status and body.
   */
  async request(
    method: 'GET' | 'PUT' | 'DELETE' | 'POST',
    path: string,
    body?: Readonly<Record<string, JsonValue>>,
  ): Promise<{ readonly status: number; readonly body: Readonly<Record<string, JsonValue>> }> {
    const a = await this.call(body === undefined ? { method, path } : { method, path, body: { ...body } });
    return { status: a.status, body: a.body };
  }

  private nextRequestId(): string {
    this.seq++;
    return `${this.clientId}:${this.seq}`;
  }

  /** One HTTP exchange, no retries. Throws on network errors and timeouts. */
  private async once(endpoint: string, c: Call, timeoutMs: number): Promise<Answer & { headers: Headers }> {
    const init: RequestInit = {
      method: c.method,
      redirect: 'manual',
      signal: AbortSignal.timeout(Math.max(1, timeoutMs)),
      headers: {
        ...(c.body === undefined ? { accept: 'application/json' } : { 'content-type': 'application/json' }),
        ...(this.authorization === undefined ? {} : { authorization: this.authorization }),
      },
    };
    if (c.body !== undefined) init.body = JSON.stringify(c.body);
    const res = await this.fetch(endpoint + c.path, init);
    const text = await res.text();
    let body: Body = {};
    if (text.length > 0) {
      try {
        const parsed: unknown = JSON.parse(text);
        body = isObject(parsed) ? (parsed as Body) : { value: parsed as JsonValue };
      } catch {
        body = { error: text.slice(0, 200) };
      }
    }
    return { status: res.status, body, endpoint, headers: res.headers };
  }

  /** Runs a request with leader caching, redirects, failover, retries and the deadline. */
  private async call(c: Call): Promise<Answer> {
    this.probeIds();
    const deadline = Date.now() + this.deadlineMs;
    const attempts: string[] = [];
    let target = this.preferred;
    let failuresInARow = 0;
    let lastStatus = 0;
    let lastBody: Body = {};
    // The latest outcome of each endpoint: the error of a 503 answer, or null when it could not be reached.
    const outcome = new Map<string, string | null>();
    let giveUpAt: number | undefined;
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      let retryAfterMs = 0;
      try {
        const graceLeft = giveUpAt === undefined ? Infinity : Math.max(250, giveUpAt - Date.now());
        const a = await this.once(target, c, Math.min(this.timeoutMs, remaining, graceLeft));
        if (a.status === 307 || a.status === 308) {
          const leader = this.redirectTarget(a, target);
          attempts.push(`${target}: ${a.status} ${errorText(a.body)}${leader ? ` -> ${leader}` : ''}`);
          if (leader !== undefined && leader !== target) {
            this.preferred = leader;
            target = leader;
            continue;
          }
          // No usable leader hint (election in progress): treat like an unavailable node.
          lastStatus = 503;
          lastBody = a.body;
        } else if (a.status >= 500) {
          attempts.push(`${target}: ${a.status} ${errorText(a.body)}`);
          lastStatus = a.status;
          lastBody = a.body;
          if (a.status === 503 && typeof a.body.error === 'string') outcome.set(target, a.body.error);
          else outcome.delete(target);
          const ra = Number(a.headers.get('retry-after'));
          if (Number.isFinite(ra) && ra > 0) retryAfterMs = Math.min(ra * 1000, 2000);
        } else {
          this.learnLeader(a);
          if (a.status >= 200 && a.status < 300) return a;
          throw toError(a, c.key);
        }
      } catch (err) {
        if (err instanceof KvError) throw err;
        // A certificate that does not verify will not verify on a retry: say so at once.
        const untrusted = untrustedCertificate(err);
        if (untrusted !== undefined) throw new KvError(`${target}: ${untrusted}`, 0);
        attempts.push(`${target}: ${describe(err)}`);
        lastStatus = 0;
        // A node that said why it cannot serve and then timed out (cut short by the grace) keeps its answer.
        if (!outcome.has(target)) outcome.set(target, null);
      }
      // Every endpoint tried, none can serve, some said why: give the cluster a short grace, then that answer.
      const everyNode = this.unavailableEverywhere(outcome);
      if (everyNode !== undefined) {
        giveUpAt ??= Date.now() + this.graceMs;
        if (Date.now() >= giveUpAt) {
          throw new UnavailableError(
            `${everyNode.error} (${c.method} ${c.path}: ${everyNode.answered} node(s) answered 503` +
              `${everyNode.unreachable > 0 ? `, ${everyNode.unreachable} unreachable` : ''})`,
            attempts,
            503,
            lastStatus === 503 ? lastBody : { error: everyNode.error },
            everyNode,
          );
        }
      } else giveUpAt = undefined;
      // Fail over: next endpoint, backing off (longer once every endpoint failed in a row).
      failuresInARow++;
      if (this.preferred === target) this.preferred = this.nextEndpoint(target);
      target = this.nextEndpoint(target);
      const base = Math.min(1000, this.backoffMs * 2 ** Math.min(attempt, 10));
      let wait = base / 2 + (Math.random() * base) / 2;
      if (failuresInARow >= this.endpoints.length) wait = Math.max(wait, retryAfterMs);
      const left = deadline - Date.now();
      if (left <= 0 || attempt === this.retries) break;
      await sleep(Math.min(wait, left));
    }
    const last = attempts[attempts.length - 1] ?? 'no attempt made';
    throw new UnavailableError(
      `${c.method} ${c.path} failed after ${attempts.length} attempt(s): ${last}`,
      attempts,
      lastStatus === 0 ? 503 : lastStatus,
      lastBody,
      this.unavailableEverywhere(outcome),
    );
  }

  /** When every endpoint's latest outcome is a 503 with an error or unreachable, and one answered: that error. */
  private unavailableEverywhere(
    outcome: ReadonlyMap<string, string | null>,
  ): { error: string; answered: number; unreachable: number } | undefined {
    if (outcome.size < this.endpoints.length) return undefined;
    const errors = [...outcome.values()].filter((e): e is string => e !== null);
    if (errors.length === 0) return undefined;
    // The most frequent answer ("No quorum" over a lone "Node is failed").
    const count = new Map<string, number>();
    for (const e of errors) count.set(e, (count.get(e) ?? 0) + 1);
    const error = [...count.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] as string;
    return { error, answered: errors.length, unreachable: outcome.size - errors.length };
  }

  private nextEndpoint(after: string): string {
    const i = this.endpoints.indexOf(after);
    return this.endpoints[(i + 1) % this.endpoints.length] as string;
  }

  private redirectTarget(a: Answer & { headers: Headers }, from: string): string | undefined {
    const candidates = [a.headers.get('location'), a.body.leader_url];
    for (const c of candidates) {
      if (typeof c !== 'string' || c.length === 0) continue;
      try {
        return new URL(c, from).origin;
      } catch {
        continue;
      }
    }
    return undefined;
  }

  /** After an answer naming the leader, prefer the leader's endpoint if we know it. */
  private learnLeader(a: Answer): void {
    const leader = asNumber(a.body.leader);
    if (leader === undefined || leader <= 0) {
      this.preferred = a.endpoint;
      return;
    }
    this.preferred = this.idToEndpoint.get(leader) ?? a.endpoint;
  }

  /** Learns each endpoint's node id from `/health`, once, in the background. */
  private probeIds(): void {
    if (this.probing !== undefined || this.endpoints.length < 2) return;
    this.probing = Promise.all(
      this.endpoints.map(async (e) => {
        try {
          const a = await this.once(e, { method: 'GET', path: '/health' }, 1000);
          const id = asNumber(a.body.node_id);
          if (id !== undefined && !this.idToEndpoint.has(id)) this.idToEndpoint.set(id, e);
        } catch {
          // unreachable now; redirects and failover still work without its id
        }
      }),
    ).then(() => {
      // Probe again later if some endpoint did not answer.
      if (this.idToEndpoint.size < this.endpoints.length) setTimeout(() => (this.probing = undefined), 5000).unref();
    });
  }
}

/** `Basic base64(user:password)` or `Bearer <token>`. */
export function authorizationHeader(auth: ClientAuth | undefined): string | undefined {
  if (auth === undefined) return undefined;
  if ('token' in auth) return `Bearer ${auth.token}`;
  if (auth.user.includes(':')) throw new TypeError('a user name cannot contain ":"');
  return 'Basic ' + Buffer.from(`${auth.user}:${auth.password}`, 'utf8').toString('base64');
}

function meta(a: Answer): ResponseMeta {
  const revision = asNumber(a.body.revision);
  const version = asNumber(a.body.version);
  const leader = asNumber(a.body.leader);
  return {
    endpoint: a.endpoint,
    ...(revision === undefined ? {} : { revision }),
    ...(version === undefined ? {} : { version }),
    ...(leader === undefined ? {} : { leader }),
  };
}

function listItems(body: Body): ListItem[] {
  // The raft server answers {"keys": [records]}; `items` / `kvs` are accepted from other nodes' dialects.
  const arr = [body.keys, body.items, body.kvs].find(Array.isArray) ?? [];
  const out: ListItem[] = [];
  for (const it of arr) {
    if (typeof it === 'string') out.push({ key: it });
    else if (isObject(it) && typeof it.key === 'string') {
      const version = asNumber(it.version);
      const revision = asNumber(it.revision);
      out.push({
        key: it.key,
        ...('value' in it ? { value: it.value } : {}),
        ...(version === undefined ? {} : { version }),
        ...(revision === undefined ? {} : { revision }),
      });
    }
  }
  return out;
}

function errorText(body: Body): string {
  return typeof body.error === 'string' ? body.error : JSON.stringify(body).slice(0, 200);
}

function toError(a: Answer, key: string | undefined): KvError {
  if (a.status === 404 && a.body.error === 'Key does not exist' && key !== undefined) {
    return new NotFoundError(key, a.body);
  }
  if (a.status === 412) return new PreconditionFailedError(a.body);
  return new KvError(errorText(a.body), a.status, a.body);
}

const CERT_ERRORS = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** The reason a node's certificate was refused, if that is why `err` happened. */
export function untrustedCertificate(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e instanceof Error; depth++) {
    const code = (e as Error & { code?: unknown }).code;
    if (typeof code === 'string' && CERT_ERRORS.has(code)) {
      return `the node's TLS certificate is not trusted (${e.message}); give the CA that signed it (--cacert, the ca option)`;
    }
    e = (e as Error & { cause?: unknown }).cause;
  }
  return undefined;
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'timed out';
    const cause = (err as Error & { cause?: unknown }).cause;
    if (cause instanceof Error) return `${err.message}: ${cause.message}`;
    return err.message;
  }
  return String(err);
}
