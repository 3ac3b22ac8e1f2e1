/**
 * The HTTP face of a causal replica: the client API of the contract's causal section (`/kvs`, `/view`),
 * the common `/health`, `/status`, `/metrics`, `/admin/*`, and the internal replication endpoints.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  checkKey,
  checkPutBody,
  createHttpServer,
  HttpError,
  jsonNestingExceeds,
  methodNotAllowed,
  tooDeep,
  unavailable,
  type Limits,
} from '../../server/http-common.js';
import { installPeerAuth, refusalMetricLines } from '../../net/peer-auth-http.js';
import { merge, parseClock, type VectorClock } from './clock.js';
import { FROM_HEADER, isSocketAddress } from './peers.js';
import { DEPENDENCY_ERROR, type CausalReplica } from './replica.js';
import { parseWrite } from './state.js';

/** Metadata entries accepted from a client; a real clock has one per replica. */
const MAX_METADATA_ENTRIES = 1000;

type KvsRequest = FastifyRequest<{ Params: { '*': string } }>;

/** The original's route for the replicas' store exchange; a client's GET of the key `sync` still works. */
const SYNC_ROUTE = '/kvs/sync';
/** Forward-target answers a replica relays to its client (others become a 502). */
const RELAYED = new Set([200, 201, 400, 404, 413, 503]);

function bodyObject(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'Request body must be a JSON object');
  return body as Record<string, unknown>;
}

/** Causal metadata from the JSON body, or else from the `X-Causal-Metadata` header. */
function metadataOf(req: FastifyRequest, body: Record<string, unknown>): VectorClock {
  let raw: unknown = body['causal-metadata'];
  if (raw === undefined) {
    const h = req.headers['x-causal-metadata'];
    raw = Array.isArray(h) ? h[0] : h;
  }
  const parsed = parseClock(raw);
  if (typeof parsed === 'string') throw new HttpError(400, parsed);
  if (Object.keys(parsed).length > MAX_METADATA_ENTRIES)
    throw new HttpError(400, 'Causal metadata has too many entries');
  return parsed;
}

export function buildCausalApp(
  node: CausalReplica,
  limits: { maxKeyChars: number; maxValueBytes: number },
  logger = false,
): FastifyInstance {
  // Keys are limited in characters here; the byte limit only has to let 50 characters of any script through.
  const httpLimits: Limits = { maxKeyBytes: limits.maxKeyChars * 4, maxValueBytes: limits.maxValueBytes };
  const app = createHttpServer({
    limits: httpLimits,
    logger,
    ...(node.tls.server === undefined ? {} : { https: node.tls.server }),
  });

  // The causal API sends metadata in the body of GET requests, which Fastify skips by default.
  app.addHttpMethod('GET', { hasBody: true, overrideExisting: true });
  // Fastify's default JSON parser rejects an empty body; GET and DELETE often carry none, so accept it.
  app.removeContentTypeParser('application/json');
  // Bodies are JSON whatever their declared type (clients such as `curl -d` send form content types).
  const parseJson = (_req: FastifyRequest, text: string | Buffer, done: (e: Error | null, body?: unknown) => void) => {
    const s = typeof text === 'string' ? text : text.toString('utf8');
    if (s.trim().length === 0) return done(null, undefined);
    if (jsonNestingExceeds(s)) return done(tooDeep(), undefined);
    try {
      done(null, JSON.parse(s));
    } catch (e) {
      done(new HttpError(400, `Malformed JSON body: ${(e as Error).message}`), undefined);
    }
  };
  app.addContentTypeParser('application/json', { parseAs: 'string' }, parseJson);
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('*', { parseAs: 'string' }, parseJson);

  // Peer credentials: the internal routes always; a view change sent by a replica (it names itself in
  // x-qkv-from) too. A client's PUT / DELETE /view stays open, as the contract has it.
  // `GET /kvs/sync` (the store exchange under the original's route name) likewise when a replica asks.
  installPeerAuth(
    app,
    node.auth,
    (req, path) =>
      path.startsWith('/internal/') ||
      (path === '/view' && req.method !== 'GET' && req.headers[FROM_HEADER] !== undefined) ||
      (path === SYNC_ROUTE && req.method === 'GET' && req.headers[FROM_HEADER] !== undefined),
  );

  const clientGuard = (): void => {
    if (node.failed) throw unavailable('Node is failed');
    if (!node.ready) throw unavailable('Replica is catching up; try again later');
  };
  const internalGuard = (req: FastifyRequest): void => {
    if (node.failed) throw unavailable('Node is failed');
    const from = req.headers[FROM_HEADER];
    if (typeof from === 'string' && node.blocked.has(from)) throw unavailable('Partitioned from sender');
  };
  const keyOf = (req: KvsRequest): string => {
    const key = checkKey(req.params['*'], httpLimits);
    if ([...key].length > limits.maxKeyChars) throw new HttpError(400, 'Key is too long');
    return key;
  };
  const dependencies = async (deps: VectorClock): Promise<void> => {
    if (!(await node.awaitDependencies(deps))) throw unavailable(DEPENDENCY_ERROR);
    clientGuard();
  };

  /**
   * With `--forward-to`, a client write goes to the designated replica, its causal metadata with it (moved
   * from the header into the body if it came as a header), and the answer comes back unchanged. A write
   * that was itself forwarded (it names its sender replica) is handled here, so writes never loop.
   */
  const forwarded = async (
    req: FastifyRequest,
    reply: FastifyReply,
    method: 'PUT' | 'DELETE',
    key: string,
    body: Record<string, unknown>,
    deps: VectorClock,
  ): Promise<boolean> => {
    const target = node.forwardTo;
    if (target === undefined || req.headers[FROM_HEADER] !== undefined) return false;
    const out = node.blocked.has(target)
      ? undefined
      : await node.forwardWrite(method, key, { ...body, 'causal-metadata': deps });
    if (out === undefined || !RELAYED.has(out.status) || out.body === null || typeof out.body !== 'object') {
      throw unavailable('Forward target unreachable', { forward_to: target });
    }
    if (out.status === 503) reply.header('retry-after', '1');
    await reply.code(out.status).send(out.body);
    return true;
  };

  app.put('/kvs/*', async (req: KvsRequest, reply) => {
    clientGuard();
    const key = keyOf(req);
    const body = checkPutBody(req.body, httpLimits);
    const deps = metadataOf(req, body);
    if (await forwarded(req, reply, 'PUT', key, { value: body.value }, deps)) return reply;
    if (req.headers[FROM_HEADER] !== undefined) internalGuard(req);
    await dependencies(deps);
    const created = node.state.get(key) === undefined;
    const w = node.state.localWrite(key, body.value, false);
    node.broadcast(w);
    return reply
      .code(created ? 201 : 200)
      .send({ result: created ? 'created' : 'replaced', 'causal-metadata': merge(deps, w.clock) });
  });

  const getKey = async (req: FastifyRequest, reply: FastifyReply, key: string) => {
    const deps = metadataOf(req, bodyObject(req.body));
    await dependencies(deps);
    const w = node.state.latest(key);
    const meta = w === undefined ? deps : merge(deps, w.clock);
    if (w === undefined || w.deleted) {
      return reply.code(404).send({ error: 'Key does not exist', 'causal-metadata': meta });
    }
    return { result: 'found', value: w.value, 'causal-metadata': meta };
  };
  app.get('/kvs/*', async (req: KvsRequest, reply) => {
    clientGuard();
    return getKey(req, reply, keyOf(req));
  });
  // The store exchange at the original's route: a replica (it names itself; with a cluster secret its
  // request must carry a valid credential, see the policy above) gets this replica's clock and the writes
  // it lacks — all of them without a body, those not covered by `{"vc": <its clock>}` with one. A client
  // (no sender named) reads the key `sync` like any other.
  app.get(SYNC_ROUTE, async (req: FastifyRequest, reply) => {
    const from = req.headers[FROM_HEADER];
    if (from === undefined) {
      clientGuard();
      return getKey(req, reply, 'sync');
    }
    internalGuard(req);
    const body = bodyObject(req.body);
    const vc = body.vc === undefined ? {} : parseClock(body.vc);
    if (typeof vc === 'string') throw new HttpError(400, vc);
    const peer = typeof from === 'string' && node.view.health(from) !== undefined ? from : undefined;
    return node.syncReply(peer, vc, body.inc);
  });

  app.delete('/kvs/*', async (req: KvsRequest, reply) => {
    clientGuard();
    const key = keyOf(req);
    const deps = metadataOf(req, bodyObject(req.body));
    if (await forwarded(req, reply, 'DELETE', key, {}, deps)) return reply;
    if (req.headers[FROM_HEADER] !== undefined) internalGuard(req);
    await dependencies(deps);
    const cur = node.state.latest(key);
    if (cur === undefined || cur.deleted) {
      const meta = cur === undefined ? deps : merge(deps, cur.clock);
      return reply.code(404).send({ error: 'Key does not exist', 'causal-metadata': meta });
    }
    const w = node.state.localWrite(key, undefined, true);
    node.broadcast(w);
    return { result: 'deleted', 'causal-metadata': merge(deps, w.clock) };
  });
  methodNotAllowed(app, '/kvs/*', ['GET', 'PUT', 'DELETE']);

  const addressOf = (body: unknown): string => {
    const o = bodyObject(body);
    const a = o['socket-address'];
    if (a === undefined) throw new HttpError(400, 'Request does not specify a socket-address');
    if (!isSocketAddress(a)) throw new HttpError(400, 'socket-address must be "IP:PORT"');
    return a;
  };
  app.get('/view', async (req) => {
    internalGuard(req);
    return { view: node.view.list() };
  });
  app.put('/view', async (req, reply) => {
    internalGuard(req);
    const a = addressOf(req.body);
    if (!node.view.add(a)) return reply.code(200).send({ result: 'already present' });
    const h = node.view.health(a);
    if (h !== undefined) h.failures = 0;
    return reply.code(201).send({ result: 'added' });
  });
  app.delete('/view', async (req, reply) => {
    internalGuard(req);
    const a = addressOf(req.body);
    if (a === node.self) throw new HttpError(400, 'A replica cannot remove itself from its own view');
    if (!node.view.remove(a)) return reply.code(404).send({ error: 'View has no such replica' });
    return { result: 'deleted' };
  });
  methodNotAllowed(app, '/view', ['GET', 'PUT', 'DELETE']);

  app.post('/internal/replicate', async (req) => {
    internalGuard(req);
    const w = parseWrite(bodyObject(req.body).write);
    if (w === undefined) throw new HttpError(400, 'Malformed write');
    node.receive(w);
    return { result: 'ok' };
  });
  app.post('/internal/sync', async (req) => {
    internalGuard(req);
    const body = bodyObject(req.body);
    const vc = parseClock(body.vc);
    if (typeof vc === 'string') throw new HttpError(400, vc);
    const from = req.headers[FROM_HEADER];
    return node.syncReply(typeof from === 'string' ? from : undefined, vc, body.inc);
  });

  app.get('/health', async (_req, reply) => {
    if (node.failed) return reply.code(503).header('retry-after', '1').send({ error: 'Node is failed' });
    return { status: 'healthy', node_id: node.self, mode: 'causal', role: node.ready ? 'replica' : 'joining' };
  });
  // Always available: ready once it joined (copied the data from a live replica), unless failed.
  app.get('/ready', async (_req, reply) => {
    if (node.failed || !node.ready) {
      return reply
        .code(503)
        .header('retry-after', '1')
        .send({ error: node.failed ? 'Node is failed' : 'Node is joining', ready: false, node_id: node.self });
    }
    return { ready: true, node_id: node.self, mode: 'causal', role: 'replica' };
  });
  app.get('/status', async () => ({
    node_id: node.self,
    mode: 'causal',
    role: node.failed ? 'failed' : node.ready ? 'replica' : 'joining',
    failed: node.failed,
    ready: node.ready,
    view: node.view.list(),
    peers: node.view.knownPeers().map((p) => {
      const h = node.view.health(p);
      return {
        address: p,
        in_view: node.view.has(p),
        partitioned: node.blocked.has(p),
        consecutive_failures: h?.failures ?? 0,
        last_ok_ms_ago: h === undefined || h.lastOk === 0 ? null : Date.now() - h.lastOk,
      };
    }),
    forward_to: node.forwardTo ?? null,
    vector_clock: node.state.clock(),
    keys: node.state.liveKeyCount(),
    pending_writes: node.state.pendingCount(),
    store_updates: node.state.storeUpdates,
    counters: node.counters,
  }));
  app.get('/metrics', async (_req, reply) => {
    const c = node.counters;
    const lines = [
      '# HELP qkv_causal_keys Live keys held by this replica.',
      '# TYPE qkv_causal_keys gauge',
      `qkv_causal_keys ${node.state.liveKeyCount()}`,
      '# HELP qkv_causal_pending_writes Writes buffered until their dependencies arrive.',
      '# TYPE qkv_causal_pending_writes gauge',
      `qkv_causal_pending_writes ${node.state.pendingCount()}`,
      '# HELP qkv_causal_view_size Replicas in the view.',
      '# TYPE qkv_causal_view_size gauge',
      `qkv_causal_view_size ${node.view.list().length}`,
      '# HELP qkv_causal_broadcasts_total Write broadcasts sent to peers.',
      '# TYPE qkv_causal_broadcasts_total counter',
      `qkv_causal_broadcasts_total ${c.broadcasts}`,
      `qkv_causal_broadcast_failures_total ${c.broadcastFailures}`,
      '# HELP qkv_causal_syncs_total Anti-entropy exchanges attempted.',
      '# TYPE qkv_causal_syncs_total counter',
      `qkv_causal_syncs_total ${c.syncs}`,
      `qkv_causal_sync_failures_total ${c.syncFailures}`,
      '# HELP qkv_causal_dependency_unavailable_total Requests answered 503 for missing dependencies.',
      '# TYPE qkv_causal_dependency_unavailable_total counter',
      `qkv_causal_dependency_unavailable_total ${c.dependency503}`,
      ...refusalMetricLines(node.auth.refusals.snapshot()),
    ];
    return reply.type('text/plain; version=0.0.4').send(lines.join('\n') + '\n');
  });

  app.post('/admin/fail', async () => {
    node.failed = true;
    node.ready = false;
    return { result: 'failed' };
  });
  app.post('/admin/recover', async () => {
    if (!node.failed && node.ready) return { result: 'recovered' };
    node.failed = false;
    await node.join();
    return { result: 'recovered' };
  });
  app.post('/admin/partition', async (req) => {
    const peers = bodyObject(req.body).peers;
    if (!Array.isArray(peers) || !peers.every(isSocketAddress)) {
      throw new HttpError(400, 'Body must be {"peers": ["IP:PORT", ...]}');
    }
    for (const p of peers) node.blocked.add(p);
    return { result: 'partitioned', blocked: [...node.blocked].sort() };
  });
  app.post('/admin/heal', async () => {
    node.blocked.clear();
    return { result: 'healed' };
  });
  for (const url of ['/admin/fail', '/admin/recover', '/admin/partition', '/admin/heal']) {
    methodNotAllowed(app, url, ['POST']);
  }
  return app;
}
