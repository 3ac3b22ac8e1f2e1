/**
 * The live dashboard every node serves at `/ui`, in every mode (see docs/dashboard.md).
 *
 * - `GET /ui`, `/ui/app.js`, `/ui/app.css`: the page, bundled at build time (esbuild, web/ → dist/ui/);
 *   nothing is fetched from elsewhere at run time.
 * - `GET /ui/events`: Server-Sent Events, one `summary` event per second per open page: every node's
 *   `/status`, client operations per second with p50/p99 (meter.ts) and the mode's extras. While at least one
 *   page is open the node subscribes to each peer's `GET /ui/summary/stream`, on which the peer pushes its own
 *   summary once per second (one connection each, no request per second); a peer silent for 2.5 s is shown
 *   down. With no page open the links are closed and nothing is gathered.
 * - `GET /ui/summary?seconds=n`: this node's summary with its last `n` seconds of operations (asked directly
 *   by the partition and heal controls).
 * - `GET /ui/keys?prefix=&limit=`: the key browser's listing; `GET|PUT|DELETE /ui/kv/<key>`: the mode's own
 *   key API (`/kvs/<key>`), run on this node as the client's request (its Authorization header included),
 *   a redirect to the leader followed here.
 * - `POST /ui/control {"action","node"}`: kill, pause, resume, stop, start, restart a node through the local
 *   supervisor (`quorumkv cluster` sets QKV_SUPERVISOR_FILE for its nodes), or partition and heal it
 *   through the nodes' failure-simulation admin routes. With client auth on (raft), root only.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError, methodNotAllowed } from '../server/http-common.js';
import { METER_SECONDS, OpsMeter, type SecondSample } from './meter.js';
import { supervisorAction, supervisorNodes, type SupervisorNodeView } from './supervisor-link.js';
import { SseParser } from '../client/chat-stream.js';
import { fetch as undiciFetch, request as undiciRequest, type Dispatcher } from 'undici';

export type DashboardMode = 'raft' | 'quorum' | 'causal' | 'eventual';

export interface KeyRow {
  readonly key: string;
  readonly value: unknown;
  readonly version?: number;
  readonly revision?: number;
  readonly timestamp?: unknown;
}

export interface DashboardOptions {
  readonly mode: DashboardMode;
  /** `kv` or `chat` (raft mode). */
  readonly app?: string;
  /** This node's base URL (known once it listens). */
  selfUrl(): string;
  /** This node's `/status` body, computed directly (default: the route, through `inject`). */
  status?(): Record<string, unknown>;
  /** The other nodes' base URLs this node knows of. */
  peerUrls(): readonly string[];
  /** Mode-specific figures for the summary (cheap: called once per second while a page is open). */
  extra?(): Record<string, unknown>;
  /** The key browser's listing (absent: the mode's `GET /kvs?prefix=` is used, as in raft mode). */
  keys?(prefix: string, limit: number): KeyRow[];
  /**
   * With client auth on (raft): throws a 401/403 HttpError unless the request is root's, and resolves true.
   * Resolves false when client auth is off.
   */
  checkAdmin?(req: FastifyRequest): Promise<boolean>;
  /**
   * The node listens beyond loopback: its controls then need client auth's root user (its `/admin/*` routes
   * need a peer credential there, which a browser does not have).
   */
  readonly exposed?: boolean;
  /** Headers signing a request to a peer's admin route with the cluster secret. */
  sign?(method: string, path: string, body: string): Record<string, string>;
  /** How to reach peers over HTTPS (an undici agent trusting the cluster's CA); default the global fetch. */
  readonly dispatcher?: Dispatcher;
}

export interface NodeSummary {
  readonly url: string;
  readonly ok: boolean;
  readonly error?: string;
  readonly mode?: DashboardMode;
  readonly status?: Record<string, unknown>;
  readonly ops?: readonly SecondSample[];
  readonly extra?: Record<string, unknown>;
  /** The supervisor's view of the node (pid, state), when one supervises this cluster. */
  readonly supervisor?: SupervisorNodeView;
}

const UI_DIR = new URL('../../ui/', import.meta.url);
const PEER_TIMEOUT_MS = 800;
const MAX_PAGES = 64;
const MAX_NODES = 32;

interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

function loadAssets(): Map<string, Asset> | undefined {
  const files: [string, string][] = [
    ['index.html', 'text/html; charset=utf-8'],
    ['app.js', 'text/javascript; charset=utf-8'],
    ['app.css', 'text/css; charset=utf-8'],
  ];
  const out = new Map<string, Asset>();
  for (const [name, type] of files) {
    try {
      out.set(name, { type, body: readFileSync(new URL(name, UI_DIR)) });
    } catch {
      return undefined;
    }
  }
  return out;
}

export function originOf(url: string): string {
  try {
    return new URL(/^[a-z]+:\/\//i.test(url) ? url : `http://${url}`).origin;
  } catch {
    return url;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** URLs of other nodes a status names: its peers' `url`, a leader URL, a causal view's addresses. */
function urlsIn(status: Record<string, unknown> | undefined): string[] {
  if (status === undefined) return [];
  const out: string[] = [];
  if (Array.isArray(status.peers)) {
    for (const p of status.peers) {
      if (isObject(p) && typeof p.url === 'string' && p.url !== '') out.push(originOf(p.url));
    }
  }
  if (typeof status.leader_url === 'string' && status.leader_url !== '') out.push(originOf(status.leader_url));
  if (Array.isArray(status.view)) {
    for (const a of status.view) if (typeof a === 'string') out.push(originOf(a));
  }
  return out;
}

/** Keys whose record differs between replicas (eventual mode): each node's digest is `[key, timestamp][]`. */
export function differingKeys(
  nodes: readonly NodeSummary[],
  limit = 50,
): { count: number; compared: number; keys: { key: string; values: Record<string, string | null> }[] } {
  const digests = nodes
    .filter((n) => n.ok && Array.isArray(n.extra?.digest))
    .map((n) => ({ url: n.url, map: new Map(n.extra?.digest as [string, string][]) }));
  const all = new Set<string>();
  for (const d of digests) for (const k of d.map.keys()) all.add(k);
  const keys: { key: string; values: Record<string, string | null> }[] = [];
  let count = 0;
  for (const k of [...all].sort()) {
    const vals = digests.map((d) => d.map.get(k) ?? null);
    if (vals.every((v) => v === vals[0])) continue;
    count++;
    if (keys.length < limit)
      keys.push({ key: k, values: Object.fromEntries(digests.map((d, i) => [d.url, vals[i] ?? null])) });
  }
  return { count, compared: digests.length, keys };
}

function reasonOf(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e?.cause?.code === 'ECONNREFUSED') return 'connection refused';
  return e?.cause?.message ?? e?.message ?? String(err);
}

/**
 * This node's subscription to a peer's summaries (`GET /ui/summary/stream`), kept open while a page is open
 * here: the peer pushes one summary per second on one connection (no request per second), and the link
 * keeps the peer's last minutes of per-second figures for pages opened later.
 */
class PeerLink {
  private latest: NodeSummary | undefined;
  private receivedAt = 0;
  private error: string | undefined;
  private readonly ops = new Map<number, SecondSample>();
  private controller: AbortController | undefined;
  private closed = false;
  readonly opened = Date.now();

  constructor(
    readonly url: string,
    private readonly dispatcher: Dispatcher | undefined,
  ) {
    void this.run();
  }

  get status(): Record<string, unknown> | undefined {
    return this.latest?.status;
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      const controller = new AbortController();
      this.controller = controller;
      let silence: NodeJS.Timeout | undefined;
      const arm = () => {
        clearTimeout(silence);
        silence = setTimeout(() => controller.abort(new Error('no summary for 6 s')), 6000);
      };
      arm();
      try {
        // undici's request (a Node stream body): cheaper per chunk than fetch's web streams.
        const res = await undiciRequest(`${this.url}/ui/summary/stream`, {
          signal: controller.signal,
          ...(this.dispatcher === undefined ? {} : { dispatcher: this.dispatcher }),
        });
        if (res.statusCode !== 200) {
          res.body.destroy();
          throw new Error(`HTTP ${res.statusCode}`);
        }
        const parser = new SseParser();
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          arm();
          for (const ev of parser.push(chunk)) {
            if (ev.event === 'summary') this.accept(JSON.parse(ev.data) as NodeSummary);
          }
        }
        throw new Error('stream ended');
      } catch (err) {
        if (this.closed) return;
        this.error = reasonOf(controller.signal.aborted ? (controller.signal.reason ?? err) : err);
      } finally {
        clearTimeout(silence);
        controller.abort();
      }
      await sleep(1000);
    }
  }

  private accept(s: NodeSummary): void {
    this.latest = s;
    this.receivedAt = Date.now();
    this.error = undefined;
    for (const x of s.ops ?? []) this.ops.set(x.t, x);
    if (this.ops.size > METER_SECONDS + 30) {
      const min = Math.floor(Date.now() / 1000) - METER_SECONDS;
      for (const t of this.ops.keys()) if (t < min) this.ops.delete(t);
    }
  }

  /** The peer as a page sees it now; `history`: with every second kept, else the last few. */
  view(history: boolean): NodeSummary {
    const age = Date.now() - this.receivedAt;
    if (this.latest === undefined || age > STALE_MS) {
      const why =
        this.latest === undefined
          ? (this.error ??
            (Date.now() - this.opened > STALE_MS
              ? `no answer for ${Math.round((Date.now() - this.opened) / 1000)} s`
              : 'connecting'))
          : `no summary for ${Math.round(age / 1000)} s${this.error === undefined ? '' : ` (${this.error})`}`;
      return { url: this.url, ok: false, error: why };
    }
    const ops = history ? [...this.ops.values()].sort((a, b) => a.t - b.t) : (this.latest.ops ?? []).slice(-3);
    return { ...this.latest, url: this.url, ok: true, ops };
  }

  close(): void {
    this.closed = true;
    this.controller?.abort();
  }
}

/** A peer whose last summary is older than this is shown down. */
const STALE_MS = 2500;

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
} as const;

export class Dashboard {
  readonly meter = new OpsMeter();
  /** Open pages (`/ui/events`). */
  private readonly pages = new Set<ServerResponse>();
  /** Peers subscribed to this node's summaries (`/ui/summary/stream`). */
  private readonly feeds = new Set<ServerResponse>();
  private readonly links = new Map<string, PeerLink>();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private readonly known = new Set<string>();
  /** The page's files (undefined when dist/ui was not built). */
  readonly assets: Map<string, Asset> | undefined;
  /** Summaries sent to pages (for tests and the benchmark). */
  ticks = 0;

  constructor(
    private readonly app: FastifyInstance,
    private readonly opts: DashboardOptions,
  ) {
    this.assets = loadAssets();
  }

  get openPages(): number {
    return this.pages.size;
  }

  get openFeeds(): number {
    return this.feeds.size;
  }

  /** This node's summary: `/status`, the last `seconds` of operations, the mode's extras. */
  async selfSummary(seconds: number): Promise<NodeSummary> {
    let status: Record<string, unknown> = {};
    if (this.opts.status !== undefined) status = this.opts.status();
    else {
      const res = await this.app.inject({ method: 'GET', url: '/status' });
      try {
        status = JSON.parse(res.body) as Record<string, unknown>;
      } catch {
        // leave empty
      }
    }
    return {
      url: originOf(this.opts.selfUrl()),
      ok: true,
      mode: this.opts.mode,
      status,
      ops: this.meter.samples(seconds),
      extra: this.opts.extra?.() ?? {},
    };
  }

  fetch(url: string, init: RequestInit): Promise<Response> {
    const dispatcher = this.opts.dispatcher;
    if (dispatcher === undefined) return fetch(url, init);
    return undiciFetch(url, {
      ...(init as Parameters<typeof undiciFetch>[1]),
      dispatcher,
    }) as unknown as Promise<Response>;
  }

  /** One peer's summary, asked once (`GET /ui/summary`): for controls used while no page is open. */
  private async pullSummary(url: string): Promise<NodeSummary> {
    try {
      const res = await this.fetch(`${url}/ui/summary?seconds=1`, { signal: AbortSignal.timeout(PEER_TIMEOUT_MS) });
      if (res.status !== 200) return { url, ok: false, error: `HTTP ${res.status}` };
      const body = (await res.json()) as NodeSummary;
      return { ...body, url, ok: true };
    } catch (err) {
      return { url, ok: false, error: (err as Error).name === 'TimeoutError' ? 'no answer in 800 ms' : reasonOf(err) };
    }
  }

  /** Peer URLs this node knows of: its configuration's, and those its peers' statuses name. */
  private peers(extra: readonly (Record<string, unknown> | undefined)[] = []): string[] {
    const self = originOf(this.opts.selfUrl());
    const add = (u: string) => {
      if (u !== self && this.known.size < MAX_NODES) this.known.add(u);
    };
    for (const u of this.opts.peerUrls()) add(originOf(u));
    for (const st of extra) for (const u of urlsIn(st)) add(u);
    for (const l of this.links.values()) for (const u of urlsIn(l.status)) add(u);
    return [...this.known];
  }

  /** Every node's summary now, asked directly (no page needed). */
  async pullAll(): Promise<NodeSummary[]> {
    const mine = await this.selfSummary(1);
    const others = await Promise.all(this.peers([mine.status]).map((u) => this.pullSummary(u)));
    return [mine, ...others];
  }

  /** What a page gets: this node's summary and the latest of each peer's, in URL order. */
  private pageSummary(self: NodeSummary, history: boolean): Record<string, unknown> {
    const nodes = [self, ...[...this.links.values()].map((l) => l.view(history))].sort((a, b) =>
      a.url < b.url ? -1 : a.url > b.url ? 1 : 0,
    );
    const sup = supervisorNodes();
    return {
      time: Date.now(),
      mode: this.opts.mode,
      app: this.opts.app ?? 'kv',
      self: self.url,
      supervised: sup !== undefined,
      nodes: nodes.map((n) => {
        const v = sup?.get(n.url);
        return v === undefined ? n : { ...n, supervisor: v };
      }),
      ...(this.opts.mode === 'eventual' ? { convergence: differingKeys(nodes) } : {}),
    };
  }

  /** Opens a link to every known peer that has none (while pages are open). */
  private linkPeers(self: NodeSummary): boolean {
    let added = false;
    for (const u of this.peers([self.status])) {
      if (!this.links.has(u)) {
        this.links.set(u, new PeerLink(u, this.opts.dispatcher));
        added = true;
      }
    }
    return added;
  }

  /** Once per second while a page or a peer listens: this node's summary to its feeds, every node's to its pages. */
  private async tick(): Promise<void> {
    if (this.ticking) return;
    if (this.pages.size === 0 && this.feeds.size === 0) return this.stopTimer();
    this.ticking = true;
    try {
      const self = await this.selfSummary(3);
      if (this.feeds.size > 0) {
        const frame = `event: summary\ndata: ${JSON.stringify(self)}\n\n`;
        for (const res of this.feeds) res.write(frame);
      }
      if (this.pages.size > 0) {
        this.linkPeers(self);
        const frame = `event: summary\ndata: ${JSON.stringify(this.pageSummary(self, false))}\n\n`;
        for (const res of this.pages) res.write(frame);
        this.ticks++;
      }
    } catch (err) {
      this.app.log.warn({ err }, 'dashboard summary failed');
    } finally {
      this.ticking = false;
    }
  }

  private startTimer(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => void this.tick(), 1000);
    this.timer.unref();
  }

  private stopTimer(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** A page's stream: a first summary with every node's minutes of history, then one per second. */
  openPage(res: ServerResponse): void {
    res.writeHead(200, SSE_HEADERS);
    res.write('retry: 2000\n\n');
    this.pages.add(res);
    const done = () => {
      this.pages.delete(res);
      if (this.pages.size === 0) {
        // Nobody looks: stop following the peers.
        for (const l of this.links.values()) l.close();
        this.links.clear();
      }
    };
    res.on('close', done);
    res.on('error', done);
    this.startTimer();
    void (async () => {
      const self = await this.selfSummary(METER_SECONDS - 1);
      // New links need a moment for their first summary (which carries the peer's history).
      if (this.linkPeers(self)) await sleep(700);
      if (this.pages.has(res)) {
        res.write(`event: summary\ndata: ${JSON.stringify(this.pageSummary(self, true))}\n\n`);
      }
    })().catch((err: unknown) => this.app.log.warn({ err }, 'dashboard summary failed'));
  }

  /** A peer's subscription: this node's summary with its minutes of history, then one per second. */
  openFeed(res: ServerResponse): void {
    res.writeHead(200, SSE_HEADERS);
    this.feeds.add(res);
    const done = () => this.feeds.delete(res);
    res.on('close', done);
    res.on('error', done);
    this.startTimer();
    void this.selfSummary(METER_SECONDS - 1).then(
      (self) => {
        if (this.feeds.has(res)) res.write(`event: summary\ndata: ${JSON.stringify(self)}\n\n`);
      },
      (err: unknown) => this.app.log.warn({ err }, 'dashboard summary failed'),
    );
  }

  close(): void {
    this.stopTimer();
    for (const l of this.links.values()) l.close();
    this.links.clear();
    for (const res of [...this.pages, ...this.feeds]) res.end();
    this.pages.clear();
    this.feeds.clear();
  }

  /** Partition or heal `target` through the nodes' failure-simulation admin routes. */
  async partition(target: string, heal: boolean, authorization?: string): Promise<string> {
    const nodes = (await this.pullAll()).filter((n) => n.ok || n.url === target);
    const post = async (url: string, path: string, body: unknown): Promise<void> => {
      const text = JSON.stringify(body ?? {});
      const res = await this.fetch(`${url}${path}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          // With client auth on, the admin routes want the (root) credential the request came with.
          ...(authorization === undefined ? {} : { authorization }),
          ...(this.opts.sign?.('POST', path, text) ?? {}),
        },
        body: text,
        signal: AbortSignal.timeout(3000),
      });
      if (res.status >= 300) throw new HttpError(502, `${url}${path}: HTTP ${res.status} ${await res.text()}`);
    };
    const mode = this.opts.mode;
    if (mode === 'raft') {
      const idOf = (n: NodeSummary): number => Number(n.status?.id ?? n.status?.node_id);
      const t = nodes.find((n) => n.url === target);
      if (t === undefined || !Number.isInteger(idOf(t))) throw new HttpError(409, `node ${target} does not answer`);
      const tid = idOf(t);
      const others = nodes.filter((n) => n.url !== target);
      await Promise.all([
        post(target, '/admin/faults', {
          drop: heal
            ? []
            : others
                .map(idOf)
                .filter(Number.isInteger)
                .sort((a, b) => a - b),
        }),
        ...others.map((n) => post(n.url, '/admin/faults', { drop: heal ? [] : [tid] })),
      ]);
    } else if (mode === 'causal') {
      const addr = (u: string): string => new URL(u).host;
      const others = nodes.filter((n) => n.url !== target);
      if (heal) await Promise.all(nodes.map((n) => post(n.url, '/admin/heal', {})));
      else {
        await Promise.all([
          post(target, '/admin/partition', { peers: others.map((n) => addr(n.url)) }),
          ...others.map((n) => post(n.url, '/admin/partition', { peers: [addr(target)] })),
        ]);
      }
    } else {
      // Quorum and eventual nodes simulate a cut-off node with /admin/fail (no traffic in or out).
      await post(target, heal ? '/admin/recover' : '/admin/fail', {});
    }
    return `${target} ${heal ? 'healed' : 'partitioned'}`;
  }
}

interface KvParams {
  Params: { '*': string };
}

function sendAsset(reply: FastifyReply, assets: Map<string, Asset> | undefined, name: string): FastifyReply {
  const a = assets?.get(name);
  if (a === undefined) {
    return reply.code(503).send({ error: 'Dashboard not built: run `npm run build` (it bundles web/ into dist/ui)' });
  }
  return reply.header('content-type', a.type).header('cache-control', 'no-cache').send(a.body);
}

const CONTROL_ACTIONS = ['kill', 'pause', 'resume', 'stop', 'start', 'restart', 'partition', 'heal'] as const;
type ControlAction = (typeof CONTROL_ACTIONS)[number];

/** Registers `/ui` and its routes on a node's server; returns the dashboard (close it with the server). */
export function registerDashboard(app: FastifyInstance, opts: DashboardOptions): Dashboard {
  const d = new Dashboard(app, opts);
  d.meter.install(app);
  app.addHook('onClose', async () => d.close());

  app.get('/ui', (_req, reply) => sendAsset(reply, d.assets, 'index.html'));
  app.get('/ui/', (_req, reply) => sendAsset(reply, d.assets, 'index.html'));
  app.get('/ui/app.js', (_req, reply) => sendAsset(reply, d.assets, 'app.js'));
  app.get('/ui/app.css', (_req, reply) => sendAsset(reply, d.assets, 'app.css'));

  app.get('/ui/events', (_req, reply) => {
    if (d.openPages >= MAX_PAGES) throw new HttpError(503, 'Too many open dashboards');
    reply.hijack();
    d.openPage(reply.raw);
  });

  // Peers' dashboards subscribe here while one of their pages is open.
  app.get('/ui/summary/stream', (_req, reply) => {
    if (d.openFeeds >= MAX_PAGES) throw new HttpError(503, 'Too many summary subscribers');
    reply.hijack();
    d.openFeed(reply.raw);
  });

  app.get<{ Querystring: { seconds?: number } }>(
    '/ui/summary',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: { seconds: { type: 'integer', minimum: 0, maximum: METER_SECONDS - 1 } },
        },
      },
    },
    (req) => d.selfSummary(req.query.seconds ?? 1),
  );

  app.get<{ Querystring: { prefix?: string; limit?: number } }>(
    '/ui/keys',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: { prefix: { type: 'string' }, limit: { type: 'integer', minimum: 1, maximum: 1000 } },
        },
      },
    },
    async (req, reply) => {
      const prefix = req.query.prefix ?? '';
      const limit = req.query.limit ?? 100;
      if (opts.keys !== undefined) {
        const rows = opts.keys(prefix, limit + 1);
        return { keys: rows.slice(0, limit), more: rows.length > limit };
      }
      const q = new URLSearchParams({ prefix, limit: String(limit) });
      const res = await app.inject({
        method: 'GET',
        url: `/kvs?${q}`,
        headers: req.headers.authorization === undefined ? {} : { authorization: req.headers.authorization },
      });
      return reply.code(res.statusCode).header('content-type', 'application/json').send(res.body);
    },
  );

  const kv = async (req: FastifyRequest<KvParams>, reply: FastifyReply) => {
    const key = req.params['*'];
    if (key === '') throw new HttpError(400, 'Key is missing');
    const method = req.method as 'GET' | 'PUT' | 'DELETE';
    const headers: Record<string, string> = {};
    if (req.headers.authorization !== undefined) headers.authorization = req.headers.authorization;
    const body = req.body === undefined ? undefined : JSON.stringify(req.body);
    if (body !== undefined) headers['content-type'] = 'application/json';
    const path = `/kvs/${encodeURIComponent(key)}`;
    const res = await app.inject({ method, url: path, headers, ...(body === undefined ? {} : { payload: body }) });
    const location = res.headers.location;
    if (res.statusCode === 307 && typeof location === 'string') {
      // Quorum followers send writes to the leader: follow it here (the page stays on its own origin).
      const fwd = await d.fetch(location, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        signal: AbortSignal.timeout(5000),
      });
      return reply
        .code(fwd.status)
        .header('content-type', 'application/json')
        .send(await fwd.text());
    }
    return reply.code(res.statusCode).header('content-type', 'application/json').send(res.body);
  };
  app.get<KvParams>('/ui/kv/*', kv);
  app.put<KvParams>('/ui/kv/*', kv);
  app.delete<KvParams>('/ui/kv/*', kv);
  methodNotAllowed(app, '/ui/kv/*', ['GET', 'PUT', 'DELETE']);

  app.post<{ Body: { action: ControlAction; node: string } }>(
    '/ui/control',
    {
      schema: {
        body: {
          type: 'object',
          required: ['action', 'node'],
          additionalProperties: false,
          properties: {
            action: { type: 'string', enum: [...CONTROL_ACTIONS] },
            node: { type: 'string', minLength: 1, maxLength: 512 },
          },
        },
      },
    },
    async (req) => {
      const root = (await opts.checkAdmin?.(req)) === true;
      if (opts.exposed === true && !root) {
        throw new HttpError(
          403,
          'The controls of a node reachable beyond loopback need client auth and the root user (quorumkv cluster --auth)',
        );
      }
      const { action, node } = req.body;
      const target = originOf(node);
      if (action === 'partition' || action === 'heal') {
        return { result: await d.partition(target, action === 'heal', req.headers.authorization) };
      }
      return { result: await supervisorAction(action, target) };
    },
  );
  methodNotAllowed(app, '/ui/control', ['POST']);
  for (const p of ['/ui', '/ui/events', '/ui/summary', '/ui/summary/stream', '/ui/keys']) {
    methodNotAllowed(app, p, ['GET']);
  }
  return d;
}
