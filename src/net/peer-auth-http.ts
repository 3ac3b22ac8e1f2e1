/**
 * Peer credentials on a node's HTTP server (every mode): Fastify hooks that refuse internal requests without
 * a valid signature, and the refusal counter for `/metrics`.
 *
 * - A request must carry a valid credential when the mode's policy says so (its internal routes; `/admin/*`
 *   on a node listening beyond loopback) or when it presents one (any `x-qkv-*` credential header): a wrong
 *   credential is refused on public routes too.
 * - onRequest: a missing credential answers `401 {"error":"Peer credential required"}`; a malformed or stale
 *   one `403 {"error":"Invalid peer credential"}` — before the body is read.
 * - preParsing: the body is hashed as it streams to the parser.
 * - preValidation (before any handler runs): the MAC over method, path, timestamp, nonce and body hash, then
 *   the nonce (replays are 403).
 * A node without a secret (see resolvePeerKeys) installs nothing.
 */
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { EMPTY_BODY_HASH, presentsCredential, type PeerAuth, type RefusalSample, type Verdict } from './peer-auth.js';

export const CREDENTIAL_REQUIRED = 'Peer credential required';
export const CREDENTIAL_INVALID = 'Invalid peer credential';

/** Whether a request must carry a valid peer credential; `path` is the matched route's URL (see routedPath). */
export type PeerPolicy = (req: FastifyRequest, path: string) => boolean;

/** Requests under check, with their body hash once read. */
interface Pending {
  hash: string | undefined;
}

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

/**
 * The path the request is routed by: the matched route's URL. The raw URL does not name the route: the
 * router matches an absolute-form target (`http://host/replicate`) by its path and decodes percent-escapes
 * (`/%72eplicate`), so a policy judged on the raw URL would let such requests reach internal routes
 * unchecked. Without a route (a 404) the URL's path.
 */
function routedPath(req: FastifyRequest): string {
  return req.routeOptions.url ?? pathOf(req.url);
}

function refuse(auth: PeerAuth, req: FastifyRequest, reply: FastifyReply, v: Verdict & { ok: false }): FastifyReply {
  auth.refusals.record('http', v.reason, req.ip, `${req.method} ${pathOf(req.url)}`);
  return reply.code(v.status).send({ error: v.status === 401 ? CREDENTIAL_REQUIRED : CREDENTIAL_INVALID });
}

/** True for the admin routes, which need a credential on nodes listening beyond loopback. */
export function isAdminPath(path: string): boolean {
  return path.startsWith('/admin/');
}

/** Installs the checks; `policy` names the routes that require a credential (admin routes are added here). */
export function installPeerAuth(app: FastifyInstance, auth: PeerAuth, policy: PeerPolicy): void {
  const verifier = auth.verifier;
  if (verifier === undefined) return;
  const pending = new WeakMap<FastifyRequest, Pending>();

  // Callback-style hooks: on the common path (a request without credential on a public route) they cost a
  // header lookup or two and no promise.
  app.addHook('onRequest', (req, reply, done) => {
    const path = routedPath(req);
    const required = policy(req, path) || (auth.adminNeedsCredential && isAdminPath(path));
    if (!required && !presentsCredential(req.headers)) return done();
    const v = verifier.precheck(req.headers);
    if (!v.ok) {
      refuse(auth, req, reply, v);
      return;
    }
    pending.set(req, { hash: undefined });
    done();
  });

  app.addHook('preParsing', (req, reply, payload, done) => {
    const p = pending.get(req);
    if (p === undefined) return done(null, payload);
    const h = createHash('sha256');
    const tee = new Transform({
      transform(chunk: Buffer, _enc, done) {
        h.update(chunk);
        done(null, chunk);
      },
      flush(done) {
        p.hash = h.digest('hex');
        done();
      },
    });
    payload.on('error', (err) => tee.destroy(err));
    // Fastify listens to the stream only while it reads the body; when it never does (no or an unsupported
    // content type) or has finished, a request aborted by its client (a broken chunked encoding, a reset)
    // would emit an error here that nobody handles, ending the process. The request's own error handling
    // answers it; this stream's error has nothing left to do.
    tee.on('error', () => {});
    // When the answer goes out before the body was read to its end (no or an unsupported content type, an
    // early error), nothing reads this stream any more and, once its buffer fills, the request would stall
    // with the rest of its body unread, holding the connection open. Unhook it: the request then discards
    // the rest, as it does for a request that carries no credential.
    reply.raw.once('finish', () => {
      if (tee.readableEnded) return;
      payload.unpipe(tee);
      tee.destroy();
      payload.resume();
    });
    done(null, payload.pipe(tee));
  });

  app.addHook('preValidation', (req, reply, done) => {
    const p = pending.get(req);
    if (p === undefined) return done();
    const v = verifier.verify(req.method, req.url, req.headers, p.hash ?? EMPTY_BODY_HASH);
    if (!v.ok) {
      refuse(auth, req, reply, v);
      return;
    }
    done();
  });
}

export const REFUSAL_METRIC = 'quorumkv_peer_auth_refused_total';
const REFUSAL_HELP = 'Peer requests and connections refused for a missing or invalid credential, by channel and reason';

/** Registers the refusal counter on a prom-client registry; `read` is called at scrape time. */
export function registerRefusalMetric(registry: Registry, read: () => readonly RefusalSample[]): void {
  new Counter({
    name: REFUSAL_METRIC,
    help: REFUSAL_HELP,
    labelNames: ['channel', 'reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const s of read()) this.inc({ channel: s.channel, reason: s.reason }, s.count);
    },
  });
}

/** The same counter as Prometheus text lines (for nodes that write their metrics by hand). */
export function refusalMetricLines(samples: readonly RefusalSample[]): string[] {
  const lines = [`# HELP ${REFUSAL_METRIC} ${REFUSAL_HELP}`, `# TYPE ${REFUSAL_METRIC} counter`];
  for (const s of samples) lines.push(`${REFUSAL_METRIC}{channel="${s.channel}",reason="${s.reason}"} ${s.count}`);
  return lines;
}
