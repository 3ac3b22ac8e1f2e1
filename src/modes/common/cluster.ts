/**
 * Local clusters of child processes in the default layouts, for `quorumkv cluster --mode quorum|eventual`,
 * benchmarks and tests. Each node is `node dist/src/modes/<mode>/main.js`; `stop()` ends them by PID.
 * Every node gets the same cluster secret (QKV_CLUSTER_SECRET_FILE): the given file, else a fresh one in a
 * temporary directory that `stop()` removes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureSecretFile } from '../../net/peer-auth.js';
import type { TlsFiles } from '../../net/tls-config.js';
import { eventualClusterLayout, quorumClusterLayout } from './layout.js';
import { spawnModeNode, type SpawnedNode } from './spawn.js';

export interface LocalCluster {
  /** Quorum: the leader first, then the followers. Eventual: the replicas. */
  readonly nodes: readonly SpawnedNode[];
  /** The cluster secret file the nodes share (tests sign requests with it). */
  readonly secretFile: string;
  stop(): Promise<void>;
}

async function stopAll(nodes: readonly SpawnedNode[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.stop()));
}

/** A cluster's secret: `file` (created if absent), else a new one in a temporary directory. */
export interface ClusterSecret {
  readonly file: string;
  /** The environment that hands it to a node. */
  readonly env: Record<string, string>;
  /** Removes the temporary directory, if one was made. */
  dispose(): void;
}

/** The environment that gives a node its TLS files (none without TLS). */
export function tlsEnv(tls: TlsFiles | undefined): Record<string, string> {
  if (tls === undefined) return {};
  return { QKV_TLS_CERT: tls.cert, QKV_TLS_KEY: tls.key, ...(tls.ca === undefined ? {} : { QKV_TLS_CA: tls.ca }) };
}

export function clusterSecret(file?: string): ClusterSecret {
  let tmp: string | undefined;
  if (file === undefined) tmp = mkdtempSync(path.join(os.tmpdir(), 'qkv-secret-'));
  const abs = ensureSecretFile(file ?? path.join(tmp as string, 'cluster.secret'));
  return {
    file: abs,
    env: { QKV_CLUSTER_SECRET_FILE: abs },
    dispose: () => {
      if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
    },
  };
}

/** Wraps started nodes as a LocalCluster whose stop() also disposes of the secret. */
function cluster(nodes: readonly SpawnedNode[], secret: ClusterSecret): LocalCluster {
  return {
    nodes,
    secretFile: secret.file,
    stop: async () => {
      await stopAll(nodes);
      secret.dispose();
    },
  };
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
  /** The cluster secret file (created if absent); default: a temporary one. */
  readonly clusterSecretFile?: string;
  /** TLS files every node serves HTTPS with (a certificate valid for the host). */
  readonly tls?: TlsFiles;
}

/** Leader on basePort (8000) and followers on the next ports (8001–8005 by default). */
export async function spawnQuorumCluster(opts: QuorumClusterOptions = {}): Promise<LocalCluster> {
  const layout = quorumClusterLayout(opts);
  const secret = clusterSecret(opts.clusterSecretFile);
  const env: Record<string, string> = { ...secret.env, ...tlsEnv(opts.tls) };
  if (opts.writeQuorum !== undefined) env.WRITE_QUORUM = String(opts.writeQuorum);
  if (opts.minDelay !== undefined) env.MIN_DELAY = String(opts.minDelay);
  if (opts.maxDelay !== undefined) env.MAX_DELAY = String(opts.maxDelay);
  const hostPort = (a: { host: string; port: number }) => `${a.host}:${a.port}`;
  let leader: SpawnedNode;
  try {
    leader = await spawnModeNode(
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
  } catch (err) {
    secret.dispose();
    throw err;
  }
  const results = await Promise.allSettled(
    layout.followers.map((f) =>
      spawnModeNode(
        'quorum',
        [
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
        ],
        { ...secret.env, ...tlsEnv(opts.tls) },
      ),
    ),
  );
  const started = [leader, ...results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))];
  const failure = results.find((r) => r.status === 'rejected');
  if (failure !== undefined) {
    await cluster(started, secret).stop();
    throw failure.reason;
  }
  return cluster(started, secret);
}

export interface EventualClusterOptions {
  readonly basePort?: number;
  readonly replicas?: number;
  readonly host?: string;
  /** More flags for every replica (e.g. `['--anti-entropy-interval', '200']`). */
  readonly args?: readonly string[];
  /** The cluster secret file (created if absent); default: a temporary one. */
  readonly clusterSecretFile?: string;
  /** TLS files every replica serves HTTPS with. */
  readonly tls?: TlsFiles;
}

/** Replicas r1..rn on consecutive ports from basePort (8100–8102 by default). */
export async function spawnEventualCluster(opts: EventualClusterOptions = {}): Promise<LocalCluster> {
  const layout = eventualClusterLayout(opts);
  const secret = clusterSecret(opts.clusterSecretFile);
  const results = await Promise.allSettled(
    layout.map((r) =>
      spawnModeNode(
        'eventual',
        [
          '--id',
          r.id,
          '--host',
          r.host,
          '--port',
          String(r.port),
          '--peers',
          r.peers.map((u) => u.replace(/^https?:\/\//, '')).join(','),
          ...(opts.args ?? []),
        ],
        { ...secret.env, ...tlsEnv(opts.tls) },
      ),
    ),
  );
  const nodes = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failure = results.find((r) => r.status === 'rejected');
  if (failure !== undefined) {
    await cluster(nodes, secret).stop();
    throw failure.reason;
  }
  return cluster(nodes, secret);
}

export interface CausalClusterOptions {
  /** SOCKET_ADDRESS of each replica; the view is all of them. */
  readonly addresses: readonly string[];
  /** The cluster secret file (created if absent); default: a temporary one. */
  readonly clusterSecretFile?: string;
  /** More environment for every replica. */
  readonly env?: Readonly<Record<string, string>>;
  /** TLS files every replica serves HTTPS with. */
  readonly tls?: TlsFiles;
}

/** Causal replicas, one per address, each with the whole cluster as its view. */
export async function spawnCausalCluster(opts: CausalClusterOptions): Promise<LocalCluster> {
  const secret = clusterSecret(opts.clusterSecretFile);
  const view = opts.addresses.join(',');
  const results = await Promise.allSettled(
    opts.addresses.map((addr) =>
      spawnModeNode('causal', [], {
        ...opts.env,
        ...secret.env,
        ...tlsEnv(opts.tls),
        SOCKET_ADDRESS: addr,
        VIEW: view,
      }),
    ),
  );
  const nodes = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failure = results.find((r) => r.status === 'rejected');
  if (failure !== undefined) {
    await cluster(nodes, secret).stop();
    throw failure.reason;
  }
  return cluster(nodes, secret);
}
