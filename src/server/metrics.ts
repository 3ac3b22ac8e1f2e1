/**
 * Prometheus metrics of one node (prom-client). Request counts and latencies are recorded per request;
 * Raft figures are read from the host when the registry is scraped, so they cost nothing on the hot path.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { FastifyInstance } from 'fastify';
import type { RefusalSample } from '../net/peer-auth.js';
import { registerRefusalMetric } from '../net/peer-auth-http.js';
import type { RaftHost } from './driver.js';
import { LATENCY_BUCKETS, LatencyHistogram } from './latency.js';
import type { LoopDelay } from './loop-delay.js';
import type { Forwarder } from './forward.js';

export interface MetricsSources {
  readonly host: RaftHost<unknown>;
  readonly forwarder: Forwarder;
  /** Storage statistics, e.g. `{fsyncs: n}` (whatever numeric fields the storage reports). */
  readonly storageStats: () => Record<string, unknown> | undefined;
  /** Refused peer credentials (HTTP and transport), by channel and reason. */
  readonly peerRefusals?: () => readonly RefusalSample[];
  /** The event loop's delays (see loop-delay.ts). */
  readonly loopDelay?: LoopDelay;
}

/** Per route and method: response counts by status and a latency histogram, kept in plain arrays. */
interface RouteStats {
  readonly route: string;
  readonly method: string;
  readonly byStatus: Map<number, number>;
  readonly latency: LatencyHistogram;
}

/**
 * Request figures recorded with a couple of array writes per request and turned into Prometheus samples
 * only when scraped (prom-client's per-observation label hashing showed up in the hot path).
 */
class RequestStats {
  private readonly byRoute = new Map<string, Map<string, RouteStats>>();

  record(route: string, method: string, status: number, seconds: number): void {
    let byMethod = this.byRoute.get(route);
    if (byMethod === undefined) this.byRoute.set(route, (byMethod = new Map()));
    let st = byMethod.get(method);
    if (st === undefined) {
      st = { route, method, byStatus: new Map(), latency: new LatencyHistogram() };
      byMethod.set(method, st);
    }
    st.byStatus.set(status, (st.byStatus.get(status) ?? 0) + 1);
    st.latency.record(seconds);
  }

  *all(): Iterable<RouteStats> {
    for (const m of this.byRoute.values()) yield* m.values();
  }
}

interface Sample {
  metricName?: string;
  labels: Record<string, string | number>;
  value: number;
}

/**
 * Registers a histogram whose samples come from LatencyHistogram objects at scrape time (prom-client's own
 * Histogram hashes labels on every observation).
 */
function registerHistogram(
  registry: Registry,
  name: string,
  help: string,
  read: () => { labels: Record<string, string>; h: LatencyHistogram }[],
): void {
  const metric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    get() {
      const values: Sample[] = [];
      for (const { labels, h } of read()) {
        let acc = 0;
        for (let i = 0; i <= LATENCY_BUCKETS.length; i++) {
          acc += h.buckets[i];
          const le = i < LATENCY_BUCKETS.length ? LATENCY_BUCKETS[i] : '+Inf';
          values.push({ metricName: `${name}_bucket`, labels: { ...labels, le }, value: acc });
        }
        values.push({ metricName: `${name}_sum`, labels, value: h.sum });
        values.push({ metricName: `${name}_count`, labels, value: h.count });
      }
      return { name, help, type: 'histogram', values, aggregator: 'sum' };
    },
  };
  registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
}

export class NodeMetrics {
  readonly registry = new Registry();
  private readonly stats = new RequestStats();

  constructor(src: MetricsSources) {
    const r = this.registry;
    const stats = this.stats;
    new Counter({
      name: 'quorumkv_http_requests_total',
      help: 'HTTP requests by route, method and status code',
      labelNames: ['route', 'method', 'status'],
      registers: [r],
      collect() {
        this.reset();
        for (const st of stats.all()) {
          for (const [status, n] of st.byStatus) this.inc({ route: st.route, method: st.method, status }, n);
        }
      },
    });
    registerHistogram(r, 'quorumkv_http_request_duration_seconds', 'HTTP request latency by route and method', () =>
      [...stats.all()].map((st) => ({ labels: { route: st.route, method: st.method }, h: st.latency })),
    );
    registerHistogram(r, 'quorumkv_storage_save_duration_seconds', 'Duration of each awaited storage save', () => [
      { labels: {}, h: src.host.saveLatency },
    ]);
    registerHistogram(
      r,
      'quorumkv_raft_commit_duration_seconds',
      'Leader: from a proposal reaching the host to its entry being applied',
      () => [{ labels: {}, h: src.host.commitLatency }],
    );
    const loop = src.loopDelay;
    if (loop !== undefined) {
      registerHistogram(
        r,
        'quorumkv_event_loop_delay_seconds',
        'How late the event loop ran a 20 ms timer (sampled every 20 ms): the stalls requests wait through',
        () => [{ labels: {}, h: loop.histogram }],
      );
    }
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers: [r],
        collect() {
          this.set(read());
        },
      });
    const counter = (name: string, help: string, read: () => number) =>
      new Counter({
        name,
        help,
        registers: [r],
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    const host = src.host;
    gauge('quorumkv_raft_term', 'Current Raft term', () => host.status().term);
    gauge('quorumkv_raft_commit_index', 'Highest log index known committed', () => host.status().commit);
    gauge('quorumkv_raft_applied_index', 'Highest log index applied to the state machine', () => host.applied);
    gauge('quorumkv_raft_last_index', 'Last log index', () => host.status().lastIndex);
    gauge('quorumkv_raft_is_leader', '1 when this node is the leader', () => (host.isLeader ? 1 : 0));
    gauge('quorumkv_raft_leader_id', 'Id of the known leader (0: none)', () => host.leader);
    gauge('quorumkv_node_failed', '1 while the node is marked failed', () => (host.failed ? 1 : 0));
    gauge('quorumkv_pending_requests', 'Client requests waiting in the host loop', () => host.pendingCount);
    if (loop !== undefined) {
      gauge('quorumkv_event_loop_delay_max_seconds', 'Longest event-loop delay seen since start', () => loop.max);
    }
    gauge('quorumkv_storage_disk_full', '1 while the disk is full and log writes wait for room', () =>
      src.storageStats()?.diskFull ? 1 : 0,
    );
    counter('quorumkv_raft_proposals_total', 'Commands proposed by this node', () => host.counters.proposals);
    counter('quorumkv_raft_propose_batches_total', 'propose() calls (batches)', () => host.counters.proposeBatches);
    counter('quorumkv_raft_read_rounds_total', 'ReadIndex rounds started', () => host.counters.readRounds);
    counter('quorumkv_raft_reads_total', 'Linearizable reads served through ReadIndex', () => host.counters.reads);
    counter('quorumkv_raft_readies_total', 'Ready batches processed', () => host.counters.readies);
    counter('quorumkv_storage_saves_total', 'Storage save calls (one per Ready)', () => host.counters.saves);
    counter('quorumkv_raft_applied_entries_total', 'Entries applied', () => host.counters.appliedEntries);
    counter('quorumkv_snapshots_created_total', 'Snapshots taken', () => host.counters.snapshotsCreated);
    counter('quorumkv_snapshots_restored_total', 'Snapshots installed', () => host.counters.snapshotsRestored);
    counter('quorumkv_forwarded_requests_total', 'Requests forwarded to the leader', () => src.forwarder.forwarded);
    registerRefusalMetric(r, src.peerRefusals ?? (() => []));
    counter('quorumkv_storage_fsyncs_total', 'fsync calls made by the storage', () => {
      const s = src.storageStats();
      const v = s?.fsyncs;
      return typeof v === 'number' ? v : 0;
    });
  }

  /** Records every response (route pattern, not the raw URL, to bound label cardinality). */
  install(app: FastifyInstance): void {
    app.addHook('onResponse', (req, reply, done) => {
      this.stats.record(req.routeOptions.url ?? 'unknown', req.method, reply.statusCode, reply.elapsedTime / 1000);
      done();
    });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
