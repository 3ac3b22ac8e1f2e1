/**
 * eventual mode — every replica accepts writes, acknowledges locally, pushes asynchronously, and repairs
 * whatever was missed by periodic digest-based anti-entropy; last-writer-wins on a hybrid logical clock
 * with the node id as tie-break (see docs/eventual.md and the eventual section of ../shared/api.md).
 *
 * `startEventualNode(opts)` options (the runnable entry `main.ts` maps flags and environment onto them):
 * - `id` (default `replica-<port>`), `host` (default 127.0.0.1), `port` (0 = any free port),
 *   `peers` (base URLs of the other replicas).
 * - `antiEntropyIntervalMs` (default 1000), `peerTimeoutMs` (default 1000), `buckets` (digest buckets, 256),
 *   `tombstoneTtlMs` (default 24 h), `catchUpTimeoutMs` (how long a starting or recovering node keeps trying
 *   to reach a live peer before it serves anyway, default 3000), `minDelay` / `maxDelay` (optional simulated
 *   one-way delay before each push, ms, default 0), `batchSize` (default 1000).
 * - `limits` (key/value size limits), `logger` (Fastify/pino logging, default off).
 * - `clusterSecretFile` / `insecure`: peer credentials (see ../common/credentials.ts). `/replicate` and
 *   `/sync/*` then require a peer's signature, and this replica signs everything it sends.
 */
import type { FastifyInstance } from 'fastify';
import {
  DEFAULT_LIMITS,
  HttpError,
  checkKey,
  checkPutBody,
  createHttpServer,
  methodNotAllowed,
  type Limits,
} from '../../server/http-common.js';
import { SimulatedDelay, sleep } from '../common/delay.js';
import { FailureGate } from '../common/gate.js';
import { ModeMetrics } from '../common/metrics.js';
import { PeerError } from '../common/peer-client.js';
import { openPeerAuth, type CredentialOptions } from '../common/credentials.js';
import { openPeerTls, withScheme } from '../common/peer-tls.js';
import { installPeerAuth } from '../../net/peer-auth-http.js';
import { Replica, type RoundResult } from './replica.js';
import { parseWireEntry } from './store.js';
import type { RunningNode } from '../common/running-node.js';
import { registerDashboard } from '../../dashboard/server.js';
import { isLoopbackHost } from '../../net/peer-auth.js';
import { rowsOf } from '../../dashboard/rows.js';
import { formatHlc } from './hlc.js';

export interface EventualNodeOptions extends CredentialOptions {
  readonly id?: string;
  readonly host?: string;
  readonly port?: number;
  readonly peers: readonly string[];
  readonly antiEntropyIntervalMs?: number;
  readonly peerTimeoutMs?: number;
  readonly buckets?: number;
  readonly tombstoneTtlMs?: number;
  readonly catchUpTimeoutMs?: number;
  readonly minDelay?: number;
  readonly maxDelay?: number;
  readonly batchSize?: number;
  readonly limits?: Limits;
  readonly logger?: boolean | { level: string };
}

export type { RunningNode } from '../common/running-node.js';

/** Keys of each replica the dashboard compares (the first ones in store order). */
const DIGEST_KEYS = 2000;
const MODE = 'eventual';
/** Internal routes can carry many records at once: far above the client body limit. */
const BULK_BODY_LIMIT = 256 * 1024 * 1024;

export async function startEventualNode(opts: EventualNodeOptions): Promise<RunningNode> {
  const host = opts.host ?? '127.0.0.1';
  const limits = opts.limits ?? DEFAULT_LIMITS;
  let id = opts.id ?? '';
  const aeInterval = opts.antiEntropyIntervalMs ?? 1000;
  const catchUpTimeoutMs = opts.catchUpTimeoutMs ?? 3000;
  const auth = openPeerAuth(id || `replica@${host}`, host, opts);
  const tls = openPeerTls(opts.tls);
  const app = createHttpServer({
    limits,
    logger: opts.logger ?? false,
    ...(tls.server === undefined ? {} : { https: tls.server }),
  });
  installPeerAuth(app, auth, (_req, path) => path === '/replicate' || path.startsWith('/sync/'));
  const metrics: ModeMetrics = new ModeMetrics(
    MODE,
    (): number => replica.store.liveCount,
    () => auth.refusals.snapshot(),
  );
  const replica: Replica = new Replica(
    {
      nodeId: id,
      peers: opts.peers.map((u) => withScheme(u, tls.scheme)),
      buckets: opts.buckets ?? 256,
      delay: new SimulatedDelay(opts.minDelay ?? 0, opts.maxDelay ?? opts.minDelay ?? 0),
      peerTimeoutMs: opts.peerTimeoutMs ?? 1000,
      tombstoneTtlMs: opts.tombstoneTtlMs ?? 24 * 3600 * 1000,
      batchSize: opts.batchSize ?? 1000,
      isFailed: () => gate.failed,
      sign: auth.signHeaders.bind(auth),
      dispatcher: tls.dispatcher,
    },
    metrics,
  );
  const rounds = { ok: 0, failed: 0, last: [] as RoundResult[] };

  /**
   * Catch-up on start and on /admin/recover: a full anti-entropy round with every peer (both directions).
   * Serves once at least one peer completed a round; if none is reachable it retries until
   * `catchUpTimeoutMs`, then serves anyway (it may be the first replica up).
   */
  async function catchUp(): Promise<Record<string, unknown>> {
    const deadline = Date.now() + catchUpTimeoutMs;
    const synced: RoundResult[] = [];
    const unreachable: Record<string, string> = {};
    while (true) {
      const results = await Promise.allSettled(replica.peers.map((p) => replica.antiEntropy(p)));
      results.forEach((r, i) => {
        if (r.status === 'fulfilled') synced.push(r.value);
        else unreachable[replica.peers[i]] = r.reason instanceof Error ? r.reason.message : String(r.reason);
      });
      if (synced.length > 0 || replica.peers.length === 0 || Date.now() >= deadline) break;
      await sleep(Math.min(200, aeInterval));
    }
    return { synced_from: synced, unreachable: synced.length > 0 ? {} : unreachable };
  }

  const gate = new FailureGate({ internalPaths: ['/replicate', '/sync/digest', '/sync/keys', '/data'], catchUp });
  gate.install(app, () => id);
  metrics.install(app);
  registerRoutes(app);

  function registerRoutes(a: FastifyInstance): void {
    a.get('/health', async () => ({ status: 'healthy', node_id: id, mode: MODE, role: 'replica' }));
    // Always available: ready once started and caught up (the gate answers 503 before that, or while failed).
    a.get('/ready', async () => ({ ready: true, node_id: id, mode: MODE, role: 'replica' }));

    a.get('/status', async () => ({
      node_id: id,
      mode: MODE,
      role: 'replica',
      state: gate.state,
      keys: replica.store.liveCount,
      tombstones: replica.store.size - replica.store.liveCount,
      anti_entropy: { interval_ms: aeInterval, rounds_ok: rounds.ok, rounds_failed: rounds.failed, last: rounds.last },
      last_catch_up: gate.lastCatchUp,
      peers: replica.peers.map((url) => {
        const p = replica.peerInfo.get(url);
        return { url, state: p?.state, pushed: p?.pushed, last_error: p?.lastError || undefined };
      }),
    }));

    const readKey = (key: string) => {
      const r = replica.store.getLive(key);
      if (r === undefined) throw new HttpError(404, 'Key does not exist');
      return r;
    };

    a.get<{ Params: { '*': string } }>('/kvs/*', async (req) => {
      const r = readKey(checkKey(req.params['*'], limits));
      return { result: 'found', value: r.value, timestamp: r.ts, node_id: id };
    });

    a.put<{ Params: { '*': string } }>('/kvs/*', async (req, reply) => {
      const key = checkKey(req.params['*'], limits);
      const { value } = checkPutBody(req.body, limits);
      const { ts, existed } = replica.write(key, value, false);
      metrics.writes.inc({ outcome: 'ok' });
      reply.code(existed ? 200 : 201);
      return { result: existed ? 'replaced' : 'created', timestamp: ts, node_id: id };
    });

    a.delete<{ Params: { '*': string } }>('/kvs/*', async (req) => {
      const key = checkKey(req.params['*'], limits);
      readKey(key);
      const { ts } = replica.write(key, null, true);
      metrics.writes.inc({ outcome: 'ok' });
      return { result: 'deleted', timestamp: ts, node_id: id };
    });

    // The quorum mode's /write and /read shapes, so benchmarks can drive both modes alike.
    a.post('/write', async (req) => {
      const body = req.body as Record<string, unknown> | undefined;
      if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
        throw new HttpError(400, 'Write request body must be a JSON object with "key" and "value"');
      }
      if (typeof body.key !== 'string') throw new HttpError(400, 'Write request does not specify a key');
      const key = checkKey(body.key, limits);
      const { value } = checkPutBody(body, limits);
      const { ts } = replica.write(key, value, false);
      metrics.writes.inc({ outcome: 'ok' });
      return { status: 'success', key, value, timestamp: ts, node_id: id };
    });

    a.get<{ Querystring: { key?: string } }>('/read', async (req) => {
      const key = checkKey(req.query.key, limits);
      const r = readKey(key);
      return { key, value: r.value, timestamp: r.ts, node_id: id };
    });

    a.get<{ Querystring: { tombstones?: string } }>('/data', async (req) => {
      const t = req.query.tombstones === '1' || req.query.tombstones === 'true';
      const data: Record<string, { value?: unknown; timestamp: unknown; deleted?: true }> = {};
      for (const [k, r] of replica.store.entries(t)) {
        data[k] = r.deleted ? { timestamp: r.ts, deleted: true } : { value: r.value, timestamp: r.ts };
      }
      return { data, node_id: id, count: Object.keys(data).length };
    });

    a.post('/replicate', { bodyLimit: BULK_BODY_LIMIT }, async (req) => {
      const entries = (req.body as { entries?: unknown } | null)?.entries;
      if (!Array.isArray(entries)) throw new HttpError(400, 'Replicate body needs "entries": an array');
      return { status: 'success', applied: replica.mergeEntries(entries.map(parseWireEntry)) };
    });
    a.post('/sync/digest', async (req) => replica.answerDigest(req.body));
    a.post('/sync/keys', { bodyLimit: BULK_BODY_LIMIT }, async (req) => replica.answerKeys(req.body));

    methodNotAllowed(a, '/kvs/*', ['GET', 'PUT', 'DELETE']);
    for (const p of ['/write', '/replicate', '/sync/digest', '/sync/keys']) methodNotAllowed(a, p, ['POST']);
    for (const p of ['/read', '/data', '/health', '/ready', '/status']) methodNotAllowed(a, p, ['GET']);
  }

  // The live dashboard (/ui): convergence is judged from every replica's (key, timestamp) digest.
  let selfUrl = '';
  registerDashboard(app, {
    mode: MODE,
    selfUrl: () => selfUrl,
    exposed: !isLoopbackHost(host),
    ...(tls.dispatcher === undefined ? {} : { dispatcher: tls.dispatcher }),
    peerUrls: () => replica.peers,
    extra: () => {
      const digest: [string, string][] = [];
      for (const [k, r] of replica.store.entries(true)) {
        digest.push([k, r.deleted ? `${formatHlc(r.ts)} (deleted)` : formatHlc(r.ts)]);
        if (digest.length >= DIGEST_KEYS) break;
      }
      return { digest, digest_complete: replica.store.size <= DIGEST_KEYS };
    },
    keys: (prefix, limit) =>
      rowsOf(replica.store.entries(false), prefix, limit, (key, r) => ({
        key,
        value: r.value,
        timestamp: formatHlc(r.ts),
      })),
    sign: (method, p, body) => auth.signHeaders(method, p, body),
  });

  const address = await app.listen({ host, port: opts.port ?? 0 });
  const port = Number(new URL(address).port);
  const url = `${tls.scheme}://${host}:${port}`;
  selfUrl = url;
  if (id === '') {
    id = `replica-${port}`;
    auth.setId(id);
  }
  replica.clock.setNode(id);
  metrics.setNodeId(id);
  await gate.recover();

  // Periodic anti-entropy with every peer, never overlapping itself; also drops expired tombstones.
  let running = false;
  const timer = setInterval(() => {
    if (running || gate.state !== 'serving') return;
    running = true;
    replica.purgeTombstones();
    void Promise.allSettled(replica.peers.map((p) => replica.antiEntropy(p)))
      .then((results) => {
        const last: RoundResult[] = [];
        for (const r of results) {
          if (r.status === 'fulfilled') {
            rounds.ok++;
            last.push(r.value);
            metrics.antiEntropyRounds.inc({ outcome: 'ok' });
          } else {
            rounds.failed++;
            metrics.antiEntropyRounds.inc({ outcome: r.reason instanceof PeerError ? 'unreachable' : 'error' });
          }
        }
        rounds.last = last;
      })
      .finally(() => {
        running = false;
      });
  }, aeInterval);
  timer.unref();

  return {
    url,
    id,
    async close() {
      clearInterval(timer);
      gate.fail();
      replica.close();
      await app.close();
    },
  };
}
