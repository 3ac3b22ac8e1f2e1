/**
 * Causal mode: a replicated key-value store with causal consistency (see docs/causal.md).
 *
 * Causal metadata is a vector clock keyed by replica address: at most one entry per replica address that ever
 * originated a write (the view's size), whatever the number of writes.
 */
import { buildCausalApp } from './server.js';
import { CausalReplica, type CausalReplicaOptions } from './replica.js';
import { isSocketAddress, splitAddress } from './peers.js';
import { openPeerAuth } from '../common/credentials.js';
import { registerDashboard } from '../../dashboard/server.js';
import { isLoopbackHost } from '../../net/peer-auth.js';
import { rowsOf } from '../../dashboard/rows.js';

export type { CausalReplicaOptions, CausalTunables } from './replica.js';
export { DEPENDENCY_ERROR } from './replica.js';

export interface CausalReplicaHandle {
  /** `http://IP:PORT` (`https://` with TLS) of this replica. */
  readonly url: string;
  readonly socketAddress: string;
  close(): Promise<void>;
}

/**
 * Starts one replica listening on its socket address: it announces itself to every address of the view,
 * copies the store from the live ones, then serves clients and runs its peer loop.
 */
export async function startCausalReplica(opts: CausalReplicaOptions): Promise<CausalReplicaHandle> {
  if (!isSocketAddress(opts.socketAddress)) throw new Error(`invalid socket address: ${opts.socketAddress}`);
  for (const a of opts.view) if (!isSocketAddress(a)) throw new Error(`invalid view address: ${a}`);
  const { host, port } = splitAddress(opts.socketAddress);
  const node = new CausalReplica(opts, openPeerAuth(opts.socketAddress, host, opts));
  const app = buildCausalApp(
    node,
    { maxKeyChars: opts.maxKeyChars ?? 50, maxValueBytes: opts.maxValueBytes ?? 1024 * 1024 },
    opts.logger ?? false,
  );
  // The live dashboard (/ui): every replica's vector clock and view (from /status).
  const scheme = node.tls.scheme;
  registerDashboard(app, {
    mode: 'causal',
    selfUrl: () => `${scheme}://${opts.socketAddress}`,
    exposed: !isLoopbackHost(host),
    peerUrls: () => node.view.list().map((a) => `${scheme}://${a}`),
    ...(node.tls.dispatcher === undefined ? {} : { dispatcher: node.tls.dispatcher }),
    keys: (prefix, limit) =>
      rowsOf(
        node.state.entriesSince({}).map((w) => [w.key, w] as const),
        prefix,
        limit,
        (key, w) => (w.deleted ? undefined : { key, value: w.value, timestamp: w.clock }),
      ),
  });
  await app.listen({ host, port });
  await node.join();
  node.start();
  return {
    url: `${node.tls.scheme}://${opts.socketAddress}`,
    socketAddress: opts.socketAddress,
    close: async () => {
      node.stop();
      await app.close();
    },
  };
}

/** Socket addresses of a local cluster of `n` replicas on consecutive ports. */
export function causalClusterAddresses(n = 3, basePort = 8090, host = '127.0.0.1'): string[] {
  return Array.from({ length: n }, (_, i) => `${host}:${basePort + i}`);
}

/** Starts `n` replicas in this process, each with the whole cluster as its view. */
export async function startCausalCluster(
  n = 3,
  basePort = 8090,
  tunables: Omit<CausalReplicaOptions, 'socketAddress' | 'view'> = {},
): Promise<CausalReplicaHandle[]> {
  const view = causalClusterAddresses(n, basePort);
  const out: CausalReplicaHandle[] = [];
  try {
    for (const socketAddress of view) out.push(await startCausalReplica({ ...tunables, socketAddress, view }));
  } catch (e) {
    await Promise.all(out.map((r) => r.close()));
    throw e;
  }
  return out;
}

/** The parts of the CLI's node configuration a causal replica uses (structurally typed, no import needed). */
export interface CausalNodeConfigLike {
  readonly http: { readonly host: string; readonly port: number };
  /** HTTP address of every node, this one included; becomes the view. */
  readonly peerHttp?: ReadonlyMap<unknown, { readonly host: string; readonly port: number }>;
  readonly maxValueBytes?: number;
}

/**
 * Starter for `quorumkv serve --mode causal`: the socket address is the node's HTTP address and the view its
 * known HTTP addresses; `SOCKET_ADDRESS` / `VIEW` in the environment take precedence, as the contract asks,
 * and `QKV_CLUSTER_SECRET_FILE` / `QKV_INSECURE` apply when the tunables do not say.
 */
export async function startCausalNode(
  cfg: CausalNodeConfigLike,
  tunables: Omit<CausalReplicaOptions, 'socketAddress' | 'view'> = {},
  env: NodeJS.ProcessEnv = process.env,
): Promise<CausalReplicaHandle> {
  const socketAddress = env.SOCKET_ADDRESS || `${cfg.http.host}:${cfg.http.port}`;
  const fromConfig = [...(cfg.peerHttp?.values() ?? [])].map((a) => `${a.host}:${a.port}`);
  const view = env.VIEW
    ? env.VIEW.split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0)
    : fromConfig;
  return startCausalReplica({
    maxValueBytes: cfg.maxValueBytes,
    clusterSecretFile: env.QKV_CLUSTER_SECRET_FILE || undefined,
    insecure: env.QKV_INSECURE === '1' || env.QKV_INSECURE === 'true',
    ...tunables,
    socketAddress,
    view: view.length > 0 ? view : [socketAddress],
  });
}
