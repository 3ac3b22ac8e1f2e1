import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Registry } from 'prom-client';
import type { RefusalSample } from '../../net/peer-auth.js';
import { registerRefusalMetric } from '../../net/peer-auth-http.js';

/** Per-node Prometheus metrics for the quorum and eventual modes (one registry per node, so tests can run many). */
export class ModeMetrics {
  readonly registry = new Registry();
  readonly writes: Counter<'outcome'>;
  readonly replication: Counter<'outcome'>;
  readonly antiEntropyRounds: Counter<'outcome'>;
  readonly keys: Gauge;

  constructor(
    private readonly mode: string,
    keyCount: () => number,
    /** Refused peer credentials, by channel and reason. */
    peerRefusals: () => readonly RefusalSample[] = () => [],
  ) {
    this.registry.setDefaultLabels({ mode });
    const registers = [this.registry];
    this.writes = new Counter({
      name: 'quorumkv_writes_total',
      help: 'Client writes handled by this node, by outcome',
      labelNames: ['outcome'],
      registers,
    });
    this.replication = new Counter({
      name: 'quorumkv_replication_messages_total',
      help: 'Replication messages sent to peers, by outcome',
      labelNames: ['outcome'],
      registers,
    });
    this.antiEntropyRounds = new Counter({
      name: 'quorumkv_anti_entropy_rounds_total',
      help: 'Anti-entropy rounds started by this node, by outcome',
      labelNames: ['outcome'],
      registers,
    });
    registerRefusalMetric(this.registry, peerRefusals);
    this.keys = new Gauge({
      name: 'quorumkv_keys',
      help: 'Live keys held by this node',
      registers,
      collect() {
        this.set(keyCount());
      },
    });
  }

  /** Labels every series with the node id (known once the node listens). */
  setNodeId(nodeId: string): void {
    this.registry.setDefaultLabels({ mode: this.mode, node_id: nodeId });
  }

  install(app: FastifyInstance): void {
    app.get('/metrics', async (_req, reply) => {
      reply.header('content-type', this.registry.contentType);
      return this.registry.metrics();
    });
  }
}
