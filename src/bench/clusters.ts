/**
 * Local clusters for benchmarks and experiments, one call per mode: child processes on 127.0.0.1 with ports
 * picked here, stopped by PID. Raft uses the server's LocalCluster harness; quorum, eventual and causal the
 * modes' spawners. Every cluster's nodes share a cluster secret, as real deployments do.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalCluster } from '../server/local-cluster.js';
import { spawnCausalCluster, spawnEventualCluster, spawnQuorumCluster } from '../modes/common/cluster.js';
import { freePorts } from '../modes/common/spawn.js';
import { freeNodePortRun } from '../net/ports.js';
import type { BenchMode } from './adapters.js';

export interface ClusterSpec {
  readonly mode: BenchMode;
  /** Raft nodes, eventual/causal replicas (default 3); quorum followers (default 5). */
  readonly size?: number;
  /** Quorum only. */
  readonly writeQuorum?: number;
  readonly minDelay?: number;
  readonly maxDelay?: number;
  /** Raft only: storage of the nodes (default disk, in a temporary directory). */
  readonly storage?: 'disk' | 'memory';
}

export interface BenchCluster {
  readonly mode: BenchMode;
  /** Every node's base URL (quorum: the leader first). */
  readonly nodes: readonly string[];
  /** Where writes should go (quorum and raft: the leader). */
  readonly writeNodes: readonly string[];
  /** The raft harness, for the failover experiment. */
  readonly raft?: LocalCluster;
  stop(): Promise<void>;
}

const here = path.dirname(fileURLToPath(import.meta.url));
export const CAUSAL_MAIN = path.join(here, '..', 'modes', 'causal', 'main.js');

/** Causal mode lives on its own branch; experiments include it only when its entry point is built. */
export function causalAvailable(): boolean {
  return existsSync(CAUSAL_MAIN);
}

export async function startBenchCluster(spec: ClusterSpec): Promise<BenchCluster> {
  switch (spec.mode) {
    case 'raft': {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'qkv-bench-'));
      let raft: LocalCluster;
      try {
        raft = await LocalCluster.start({
          nodes: spec.size ?? 3,
          dir,
          storage: spec.storage ?? 'disk',
          logLevel: 'error',
        });
      } catch (e) {
        rmSync(dir, { recursive: true, force: true });
        throw e;
      }
      const leader = await raft.waitLeader(15_000);
      return {
        mode: 'raft',
        nodes: raft.ids.map((id) => raft.url(id)),
        writeNodes: [raft.url(leader)],
        raft,
        async stop() {
          await raft.stopAll();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    case 'quorum': {
      const followers = spec.size ?? 5;
      const c = await spawnQuorumCluster({
        basePort: await freeNodePortRun(followers + 1),
        followers,
        writeQuorum: spec.writeQuorum,
        minDelay: spec.minDelay,
        maxDelay: spec.maxDelay,
      });
      const urls = c.nodes.map((n) => n.url);
      return { mode: 'quorum', nodes: urls, writeNodes: [urls[0]], stop: () => c.stop() };
    }
    case 'eventual': {
      const replicas = spec.size ?? 3;
      const c = await spawnEventualCluster({ basePort: await freeNodePortRun(replicas), replicas });
      const urls = c.nodes.map((n) => n.url);
      return { mode: 'eventual', nodes: urls, writeNodes: urls, stop: () => c.stop() };
    }
    case 'causal': {
      if (!causalAvailable()) throw new Error(`causal mode is not built (${CAUSAL_MAIN} missing)`);
      const ports = await freePorts(spec.size ?? 3);
      const c = await spawnCausalCluster({ addresses: ports.map((p) => `127.0.0.1:${p}`) });
      const urls = c.nodes.map((n) => n.url);
      return { mode: 'causal', nodes: urls, writeNodes: urls, stop: () => c.stop() };
    }
  }
}
