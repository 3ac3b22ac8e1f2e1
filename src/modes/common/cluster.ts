/**
 * Local clusters of child processes in the default layouts, for `quorumkv cluster --mode quorum|eventual`,
 * benchmarks and tests. Each node is `node dist/src/modes/<mode>/main.js`; `stop()` ends them by PID.
 */
import { eventualClusterLayout, quorumClusterLayout } from './layout.js';
import { spawnModeNode, type SpawnedNode } from './spawn.js';

export interface LocalCluster {
  /** Quorum: the leader first, then the followers. Eventual: the replicas. */
  readonly nodes: readonly SpawnedNode[];
  stop(): Promise<void>;
}

async function stopAll(nodes: readonly SpawnedNode[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.stop()));
}

export interface QuorumClusterOptions {
  readonly basePort?: number;
  readonly followers?: number;
  readonly host?: string;
  readonly writeQuorum?: number;
  readonly minDelay?: number;
  readonly maxDelay?: number;
  /** More flags for the leader (e.g. `['--write-timeout', '500']`). */
  readonly leaderArgs?: readonly string[];
}

/** Leader on basePort (8000) and followers on the next ports (8001–8005 by default). */
export async function spawnQuorumCluster(opts: QuorumClusterOptions = {}): Promise<LocalCluster> {
  const layout = quorumClusterLayout(opts);
  const env: Record<string, string> = {};
  if (opts.writeQuorum !== undefined) env.WRITE_QUORUM = String(opts.writeQuorum);
  if (opts.minDelay !== undefined) env.MIN_DELAY = String(opts.minDelay);
  if (opts.maxDelay !== undefined) env.MAX_DELAY = String(opts.maxDelay);
  const hostPort = (a: { host: string; port: number }) => `${a.host}:${a.port}`;
  const leader = await spawnModeNode(
    'quorum',
    [
      '--role',
      'leader',
      '--id',
      layout.leader.id,
      '--host',
      layout.leader.host,
      '--port',
      String(layout.leader.port),
      '--followers',
      layout.followers.map(hostPort).join(','),
      ...(opts.leaderArgs ?? []),
    ],
    env,
  );
  const results = await Promise.allSettled(
    layout.followers.map((f) =>
      spawnModeNode('quorum', [
        '--role',
        'follower',
        '--id',
        f.id,
        '--host',
        f.host,
        '--port',
        String(f.port),
        '--leader',
        hostPort(layout.leader),
      ]),
    ),
  );
  const started = [leader, ...results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))];
  const failure = results.find((r) => r.status === 'rejected');
  if (failure !== undefined) {
    await stopAll(started);
    throw failure.reason;
  }
  return { nodes: started, stop: () => stopAll(started) };
}

export interface EventualClusterOptions {
  readonly basePort?: number;
  readonly replicas?: number;
  readonly host?: string;
  /** More flags for every replica (e.g. `['--anti-entropy-interval', '200']`). */
  readonly args?: readonly string[];
}

/** Replicas r1..rn on consecutive ports from basePort (8100–8102 by default). */
export async function spawnEventualCluster(opts: EventualClusterOptions = {}): Promise<LocalCluster> {
  const layout = eventualClusterLayout(opts);
  const results = await Promise.allSettled(
    layout.map((r) =>
      spawnModeNode('eventual', [
        '--id',
        r.id,
        '--host',
        r.host,
        '--port',
        String(r.port),
        '--peers',
        r.peers.map((u) => u.replace(/^https?:\/\//, '')).join(','),
        ...(opts.args ?? []),
      ]),
    ),
  );
  const nodes = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failure = results.find((r) => r.status === 'rejected');
  if (failure !== undefined) {
    await stopAll(nodes);
    throw failure.reason;
  }
  return { nodes, stop: () => stopAll(nodes) };
}
