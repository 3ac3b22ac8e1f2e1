/**
 * quorum mode — a static leader and N followers with semi-synchronous replication (see docs/quorum.md and
 * the quorum section of ../shared/api.md).
 *
 * `startQuorumNode(opts)` options (the runnable entry `main.ts` maps flags and environment onto them):
 * - `role`: `'leader'` or `'follower'`; `id`: node id (default `leader` / `follower-<port>`);
 *   `host` (default 127.0.0.1) and `port` (0 = any free port).
 * - leader: `followers` (follower base URLs), `writeQuorum` (W, 1..N), `minDelay` / `maxDelay` (simulated
 *   one-way replication delay in ms). When these three are not given, the environment variables
 *   `WRITE_QUORUM`, `MIN_DELAY` and `MAX_DELAY` are used, else N, 0.1 and 1.
 *   `writeTimeoutMs` (default 2000), `replicateTimeoutMs` (default 1000), `repairIntervalMs` (default 300).
 * - follower: `leaderUrl` (required), `leaderId` (default `leader`), `catchUpTimeoutMs` (default 5000).
 * - `limits` (key/value size limits), `logger` (Fastify/pino logging, default off).
 * - `clusterSecretFile` / `insecure`: peer credentials (see ../common/credentials.ts). `/replicate` then
 *   requires the leader's signature; the leader signs everything it sends to followers and the followers
 *   their catch-up requests.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import {
  DEFAULT_LIMITS,
  HttpError,
  checkKey,
  checkPutBody,
  createHttpServer,
  methodNotAllowed,
  unavailable,
  type Limits,
} from '../../server/http-common.js';
import { SimulatedDelay, sleep } from '../common/delay.js';
import { FailureGate } from '../common/gate.js';
import { ModeMetrics } from '../common/metrics.js';
import { getJson } from '../common/peer-client.js';
import { openPeerAuth, type CredentialOptions } from '../common/credentials.js';
import { openPeerTls, withScheme } from '../common/peer-tls.js';
import { installPeerAuth } from '../../net/peer-auth-http.js';
import { QuorumReplicator } from './leader.js';
import { VersionedStore, parseWireRecord, recordOf } from './store.js';
import type { RunningNode } from '../common/running-node.js';
import { registerDashboard } from '../../dashboard/server.js';
import { isLoopbackHost } from '../../net/peer-auth.js';
import { rowsOf } from '../../dashboard/rows.js';

export interface QuorumNodeOptions extends CredentialOptions {
  readonly role: 'leader' | 'follower';
  readonly id?: string;
  readonly host?: string;
  readonly port?: number;
  readonly followers?: readonly string[];
  readonly writeQuorum?: number;
  readonly minDelay?: number;
  readonly maxDelay?: number;
  readonly writeTimeoutMs?: number;
  readonly replicateTimeoutMs?: number;
  readonly repairIntervalMs?: number;
  readonly leaderUrl?: string;
  readonly leaderId?: string;
  readonly catchUpTimeoutMs?: number;
  readonly limits?: Limits;
  readonly logger?: boolean | { level: string };
}

export type { RunningNode } from '../common/running-node.js';

const MODE = 'quorum';

function envNumber(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${name} must be a number, got ${JSON.stringify(v)}`);
  return n;
}
const DATA_TIMEOUT_MS = 2000;

export async function startQuorumNode(opts: QuorumNodeOptions): Promise<RunningNode> {
  const host = opts.host ?? '127.0.0.1';
  const limits = opts.limits ?? DEFAULT_LIMITS;
  const isLeader = opts.role === 'leader';
  const tls = openPeerTls(opts.tls);
  const followers = (opts.followers ?? []).map((u) => withScheme(u, tls.scheme));
  if (isLeader && followers.length === 0) throw new Error('a quorum leader needs at least one follower');
  if (!isLeader && !opts.leaderUrl) throw new Error('a quorum follower needs the leader URL');
  const writeQuorum = opts.writeQuorum ?? envNumber('WRITE_QUORUM') ?? followers.length;
  if (isLeader && (!Number.isInteger(writeQuorum) || writeQuorum < 1 || writeQuorum > followers.length)) {
    throw new Error(`WRITE_QUORUM must be an integer in 1..${followers.length}, got ${writeQuorum}`);
  }
  const delay = new SimulatedDelay(
    opts.minDelay ?? envNumber('MIN_DELAY') ?? 0.1,
    opts.maxDelay ?? envNumber('MAX_DELAY') ?? 1,
  );
  let id = opts.id ?? (isLeader ? 'leader' : '');
  const auth = openPeerAuth(id || `follower@${host}`, host, opts);
  const sign = auth.signHeaders.bind(auth);
  const store = new VersionedStore();
  const app = createHttpServer({
    limits,
    logger: opts.logger ?? false,
    ...(tls.server === undefined ? {} : { https: tls.server }),
  });
  installPeerAuth(app, auth, (_req, path) => path === '/replicate');
  const metrics = new ModeMetrics(
    MODE,
    () => store.liveCount,
    () => auth.refusals.snapshot(),
  );
  const leaderUrl = opts.leaderUrl === undefined ? '' : withScheme(opts.leaderUrl, tls.scheme);
  const leaderId = opts.leaderId ?? 'leader';

  const gate = new FailureGate({
    internalPaths: ['/replicate', '/data'],
    catchUp: () => (isLeader ? pullFrom(followers, 0) : pullFrom([leaderUrl], opts.catchUpTimeoutMs ?? 5000)),
  });
  const replicator = isLeader
    ? new QuorumReplicator(
        followers,
        store,
        {
          writeQuorum,
          delay,
          writeTimeoutMs: opts.writeTimeoutMs ?? 2000,
          replicateTimeoutMs: opts.replicateTimeoutMs ?? 1000,
          repairIntervalMs: opts.repairIntervalMs ?? 300,
          isFailed: () => gate.failed,
          sign,
          dispatcher: tls.dispatcher,
        },
        metrics,
      )
    : undefined;

  /**
   * Merges `/data?tombstones=1` of the given nodes into the local store (higher versions win). With a
   * positive `retryForMs`, keeps retrying until one source answered or the time is up; with 0, one pass.
   */
  async function pullFrom(sources: readonly string[], retryForMs: number): Promise<Record<string, unknown>> {
    const deadline = Date.now() + retryForMs;
    const synced: string[] = [];
    const failed: Record<string, string> = {};
    while (true) {
      for (const src of sources) {
        if (synced.includes(src)) continue;
        try {
          const res = await getJson<{ data?: Record<string, unknown> }>(
            `${src}/data?tombstones=1`,
            DATA_TIMEOUT_MS,
            sign,
            tls.dispatcher,
          );
          if (res.status !== 200 || res.body?.data === undefined) throw new Error(`status ${res.status}`);
          for (const [key, r] of Object.entries(res.body.data)) {
            store.apply(key, recordOf(parseWireRecord({ ...(r as object), key })));
          }
          synced.push(src);
          delete failed[src];
        } catch (err) {
          failed[src] = err instanceof Error ? err.message : String(err);
        }
      }
      if (synced.length > 0 || Date.now() >= deadline) break;
      await sleep(200);
    }
    return { synced_from: synced, unreachable: failed };
  }

  registerRoutes(app);
  gate.install(app, () => id);
  metrics.install(app);

  function registerRoutes(a: FastifyInstance): void {
    // Liveness (200 while serving). On the leader, `quorum`: at least W followers not known to be down.
    a.get('/health', async () => {
      if (!replicator) return { status: 'healthy', node_id: id, mode: MODE, role: opts.role };
      const q = writeQuorumState();
      return { status: q.quorum ? 'healthy' : 'degraded', node_id: id, mode: MODE, role: opts.role, ...q };
    });
    // Readiness: the gate already answers 503 while failed or catching up; the leader also needs W followers.
    a.get('/ready', async (_req, reply) => {
      const q = replicator ? writeQuorumState() : { quorum: true };
      if (q.quorum) return { ready: true, node_id: id, mode: MODE, role: opts.role };
      return reply
        .code(503)
        .header('retry-after', '1')
        .send({ error: 'Write quorum not reachable', ready: false, node_id: id, mode: MODE, role: opts.role, ...q });
    });

    a.get('/status', async () => ({
      node_id: id,
      mode: MODE,
      role: opts.role,
      state: gate.state,
      keys: store.liveCount,
      last_catch_up: gate.lastCatchUp,
      ...(replicator
        ? {
            write_quorum: writeQuorum,
            min_delay: delay.minMs,
            max_delay: delay.maxMs,
            peers: replicator.links.map((l) => ({
              url: l.url,
              state: l.state,
              acked: l.acked,
              failed_sends: l.failedSends,
              missed_keys: l.missedKeys,
              last_error: l.lastError || undefined,
            })),
          }
        : { leader: leaderId, leader_url: leaderUrl, peers: [{ url: leaderUrl, role: 'leader' }] }),
    }));

    a.post('/write', async (req, reply) => {
      if (!replicator) return redirectToLeader(reply, '/write');
      const body = req.body as Record<string, unknown> | undefined;
      if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
        throw new HttpError(400, 'Write request body must be a JSON object with "key" and "value"');
      }
      if (typeof body.key !== 'string') throw new HttpError(400, 'Write request does not specify a key');
      const key = checkKey(body.key, limits);
      const { value } = checkPutBody(body, limits);
      const out = await replicator.write(key, value, false);
      metrics.writes.inc({ outcome: out.ok ? 'ok' : 'no_quorum' });
      if (!out.ok) {
        throw unavailable('Write quorum not reached', { status: 'error', acks: out.acks, required: out.required });
      }
      return { status: 'success', key, value, version: out.version, acks: out.acks };
    });

    a.get<{ Querystring: { key?: string } }>('/read', async (req) => {
      const key = checkKey(req.query.key, limits);
      const r = store.getLive(key);
      if (r === undefined) throw new HttpError(404, 'Key does not exist');
      return { key, value: r.value, version: r.version, node_id: id };
    });

    a.get<{ Querystring: { tombstones?: string } }>('/data', async (req) => {
      const t = req.query.tombstones;
      const data = store.dataObject(t === '1' || t === 'true');
      return { data, node_id: id, count: Object.keys(data).length };
    });

    a.post('/replicate', { bodyLimit: 256 * 1024 * 1024 }, async (req) => {
      if (isLeader) throw new HttpError(409, 'The leader does not accept replication');
      const body = req.body as { entries?: unknown } | undefined;
      if (body !== null && typeof body === 'object' && Array.isArray(body.entries)) {
        const recs = body.entries.map(parseWireRecord);
        let applied = 0;
        for (const w of recs) if (store.apply(w.key, recordOf(w))) applied++;
        return { status: 'success', applied };
      }
      const w = parseWireRecord(body);
      return { status: 'success', applied: store.apply(w.key, recordOf(w)) ? 1 : 0 };
    });

    a.get<{ Params: { '*': string } }>('/kvs/*', async (req) => {
      const key = checkKey(req.params['*'], limits);
      const r = store.getLive(key);
      if (r === undefined) throw new HttpError(404, 'Key does not exist');
      return { result: 'found', value: r.value, version: r.version, node_id: id };
    });

    a.put<{ Params: { '*': string } }>('/kvs/*', async (req, reply) => {
      const key = checkKey(req.params['*'], limits);
      if (!replicator) return redirectToLeader(reply, `/kvs/${encodeURIComponent(key)}`);
      const { value } = checkPutBody(req.body, limits);
      const existed = store.getLive(key) !== undefined;
      const out = await replicator.write(key, value, false);
      metrics.writes.inc({ outcome: out.ok ? 'ok' : 'no_quorum' });
      if (!out.ok) throw unavailable('Write quorum not reached', { acks: out.acks, required: out.required });
      reply.code(existed ? 200 : 201);
      return { result: existed ? 'replaced' : 'created', version: out.version, acks: out.acks, node_id: id };
    });

    a.delete<{ Params: { '*': string } }>('/kvs/*', async (req, reply) => {
      const key = checkKey(req.params['*'], limits);
      if (!replicator) return redirectToLeader(reply, `/kvs/${encodeURIComponent(key)}`);
      if (store.getLive(key) === undefined) throw new HttpError(404, 'Key does not exist');
      const out = await replicator.write(key, null, true);
      metrics.writes.inc({ outcome: out.ok ? 'ok' : 'no_quorum' });
      if (!out.ok) throw unavailable('Write quorum not reached', { acks: out.acks, required: out.required });
      return { result: 'deleted', version: out.version, acks: out.acks, node_id: id };
    });

    methodNotAllowed(a, '/kvs/*', ['GET', 'PUT', 'DELETE']);
    methodNotAllowed(a, '/write', ['POST']);
    methodNotAllowed(a, '/replicate', ['POST']);
    methodNotAllowed(a, '/read', ['GET']);
    methodNotAllowed(a, '/data', ['GET']);
    methodNotAllowed(a, '/health', ['GET']);
    methodNotAllowed(a, '/ready', ['GET']);
    methodNotAllowed(a, '/status', ['GET']);
  }

  /** The leader's view of its write quorum: followers whose last replication did not fail count as reachable. */
  function writeQuorumState(): { quorum: boolean; reachable: number; required: number } {
    const reachable = replicator ? replicator.links.filter((l) => l.state !== 'down').length : 0;
    return { quorum: reachable >= writeQuorum, reachable, required: writeQuorum };
  }

  function redirectToLeader(reply: FastifyReply, path: string) {
    const location = `${leaderUrl}${path}`;
    reply.code(307).header('location', location);
    return { error: 'Not leader', leader: leaderId, leader_url: leaderUrl };
  }

  // The live dashboard (/ui): W, each follower's versions (sum of its keys' versions) and lag behind the leader.
  let selfUrl = '';
  registerDashboard(app, {
    mode: MODE,
    selfUrl: () => selfUrl,
    exposed: !isLoopbackHost(host),
    ...(tls.dispatcher === undefined ? {} : { dispatcher: tls.dispatcher }),
    peerUrls: () => (isLeader ? followers : [leaderUrl]),
    extra: () => {
      let versionSum = 0;
      for (const r of Object.values(store.dataObject(true))) versionSum += r.version;
      return { version_sum: versionSum, keys: store.liveCount, ...(isLeader ? { write_quorum: writeQuorum } : {}) };
    },
    keys: (prefix, limit) =>
      rowsOf(Object.entries(store.dataObject(false)), prefix, limit, (key, r) => ({
        key,
        value: r.value,
        version: r.version,
      })),
    sign,
  });

  const address = await app.listen({ host, port: opts.port ?? 0 });
  const port = Number(new URL(address).port);
  const url = `${tls.scheme}://${host}:${port}`;
  selfUrl = url;
  if (id === '') {
    id = `follower-${port}`;
    auth.setId(id);
  }
  metrics.setNodeId(id);
  await gate.recover();

  return {
    url,
    id,
    async close() {
      gate.fail();
      replicator?.close();
      await app.close();
    },
  };
}
