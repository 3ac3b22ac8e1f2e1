/**
 * `GET /admin/snapshot`: a consistent backup of the node's state machine (`quorumkv snapshot save`).
 *
 * The leader runs a ReadIndex round (the same read barrier as a linearizable read), so that its state
 * machine reflects every write acknowledged before the request, then takes the snapshot synchronously at
 * its applied index and sends it as a backup file (src/storage/backup.ts: header with index and term,
 * data, SHA-256). A follower answers 307 with the leader's URL (the body is not forwarded through it); a
 * node without a leader waits for one until the request timeout, then answers 503 No quorum.
 *
 * Protection: like every `/admin/*` route, a peer credential beyond loopback; with key-value auth on, the
 * root role (the admin guard of auth-routes.ts); a chat node has no admin users, so there the route always
 * needs the peer credential when the node has a cluster secret (see node.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import type { NodeId } from '../raft/types.js';
import { encodeBackup, type BackupApp } from '../storage/backup.js';
import type { RaftHost } from './driver.js';
import { HostError } from './requests.js';
import type { Forwarder } from './forward.js';
import { methodNotAllowed, unavailable } from './http-common.js';
import { noQuorum } from './dispatch.js';

export const SNAPSHOT_ROUTE = '/admin/snapshot';

export interface SnapshotRouteContext {
  readonly id: NodeId;
  readonly app: BackupApp;
  readonly host: RaftHost<unknown>;
  readonly forwarder: Forwarder;
  readonly peers: readonly NodeId[];
  readonly requestTimeoutMs: number;
  readonly tickMs: number;
  /** The state machine's snapshot now (synchronous: it reflects exactly `host.applied`). */
  snapshot(): Uint8Array;
  /** The term of a log index, when the log still knows it. */
  termOf(index: number): number | undefined;
  checkServing(): void;
}

export function registerSnapshotRoute(app: FastifyInstance, ctx: SnapshotRouteContext): void {
  // No automatic HEAD route: a HEAD would take (and throw away) a whole snapshot.
  app.get(SNAPSHOT_ROUTE, { exposeHeadRoute: false }, async (req, reply) => {
    const { host } = ctx;
    const deadline = Date.now() + ctx.requestTimeoutMs;
    for (;;) {
      ctx.checkServing();
      if (host.isLeader) {
        let readIndex: number;
        try {
          readIndex = await host.readBarrier();
        } catch (err) {
          if (err instanceof HostError && err.failure.kind === 'not-leader' && Date.now() < deadline) continue;
          if (err instanceof HostError && err.failure.kind === 'failed') throw unavailable('Node is failed');
          throw noQuorum(host.leader);
        }
        // Synchronously: the applied index and the state it names.
        const index = host.applied;
        const data = ctx.snapshot();
        const term = ctx.termOf(index) ?? 0;
        const file = encodeBackup(
          {
            app: ctx.app,
            index,
            term,
            peers: ctx.peers,
            node_id: ctx.id,
            created_at: new Date().toISOString(),
          },
          data,
        );
        req.log.info({ index, readIndex, bytes: file.length }, 'backup snapshot sent');
        return reply
          .header('content-type', 'application/octet-stream')
          .header('content-disposition', `attachment; filename="quorumkv-${ctx.app}-${index}.snap"`)
          .header('x-quorumkv-snapshot-index', String(index))
          .header('x-quorumkv-snapshot-term', String(term))
          .header('x-quorumkv-snapshot-sha256', file.subarray(file.length - 32).toString('hex'))
          .header('cache-control', 'no-store')
          .send(file);
      }
      const leader = host.leader;
      if (leader !== 0 && leader !== ctx.id) {
        const leaderUrl = ctx.forwarder.urlOf(leader);
        if (leaderUrl === undefined) throw unavailable('Not leader', { leader, leader_url: null });
        reply.header('location', leaderUrl + req.url);
        return reply.code(307).send({ error: 'Not leader', leader, leader_url: leaderUrl });
      }
      if (Date.now() >= deadline) throw noQuorum(leader);
      await sleep(ctx.tickMs);
    }
  });
  methodNotAllowed(app, SNAPSHOT_ROUTE, ['GET']);
  app.head(SNAPSHOT_ROUTE, (_req, reply) => reply.code(405).header('allow', 'GET').send());
}
