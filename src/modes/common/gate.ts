import type { FastifyInstance } from 'fastify';
import { sendError, unavailable } from '../../server/http-common.js';

/** Whether a node serves clients, is simulating a failure, or is catching up after a (re)start or recovery. */
export type NodeState = 'serving' | 'failed' | 'syncing';

export interface GateOptions {
  /** Paths (exact, without query) that peers use and that a syncing node must still answer. */
  readonly internalPaths: readonly string[];
  /** Brings this node up to date with its peers; called on start and on /admin/recover. */
  readonly catchUp: () => Promise<Record<string, unknown>>;
}

/** Served in every state: the admin switch itself and observability. */
const ALWAYS_SERVED = new Set(['/admin/fail', '/admin/recover', '/status', '/metrics']);

/**
 * The `/admin/fail` / `/admin/recover` switch shared by the quorum and eventual modes.
 *
 * - failed: every request except the admin routes, /status and /metrics gets `503 {"error":"Node is failed"}` (peers included,
 *   so the node exchanges no replication traffic); background loops must check `failed` and stay quiet.
 * - syncing: clients get `503 {"error":"Node is catching up"}`, peers' internal routes are served.
 * - serving: everything is served.
 */
export class FailureGate {
  private current: NodeState = 'syncing';
  private epoch = 0;
  private readonly internal: Set<string>;
  lastCatchUp: Record<string, unknown> = {};

  constructor(private readonly opts: GateOptions) {
    this.internal = new Set(opts.internalPaths);
  }

  get state(): NodeState {
    return this.current;
  }

  get failed(): boolean {
    return this.current === 'failed';
  }

  fail(): void {
    this.epoch++;
    this.current = 'failed';
  }

  /** Enters `syncing`, runs the catch-up, then serves — unless the node was failed again meanwhile. */
  async recover(): Promise<NodeState> {
    const epoch = ++this.epoch;
    this.current = 'syncing';
    let summary: Record<string, unknown>;
    try {
      summary = await this.opts.catchUp();
    } catch (err) {
      summary = { error: err instanceof Error ? err.message : String(err) };
    }
    if (epoch === this.epoch) {
      this.lastCatchUp = summary;
      this.current = 'serving';
    }
    return this.current;
  }

  /** Installs the request filter and the two admin routes on a Fastify instance. */
  install(app: FastifyInstance, nodeId: () => string): void {
    app.addHook('onRequest', async (req, reply) => {
      const path = req.url.split('?', 1)[0];
      if (ALWAYS_SERVED.has(path) || this.current === 'serving') return;
      if (this.current === 'failed') return sendError(reply, unavailable('Node is failed', { node_id: nodeId() }));
      if (this.internal.has(path)) return;
      return sendError(reply, unavailable('Node is catching up', { node_id: nodeId() }));
    });
    app.post('/admin/fail', async () => {
      this.fail();
      return { status: 'failed', node_id: nodeId() };
    });
    app.post('/admin/recover', async () => {
      if (this.current === 'serving') return { status: 'serving', node_id: nodeId() };
      const state = await this.recover();
      return { status: state, node_id: nodeId(), catch_up: this.lastCatchUp };
    });
  }
}
