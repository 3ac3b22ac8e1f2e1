/**
 * `quorumkv serve --mode quorum|eventual|causal` and `quorumkv cluster --mode ...`: the non-raft modes run
 * their own node programs (src/modes/<mode>/main.ts); these commands start them as child processes, pass
 * arguments and environment through, and stop them by PID on SIGINT / SIGTERM.
 */
import { spawn } from 'node:child_process';
import { causalClusterAddresses } from '../modes/causal/index.js';
import path from 'node:path';
import {
  spawnCausalCluster,
  spawnEventualCluster,
  spawnQuorumCluster,
  type LocalCluster,
} from '../modes/common/cluster.js';
import { mainScript, type SpawnableMode } from '../modes/common/spawn.js';
import { ensureClusterCerts } from '../net/certs.js';
import type { TlsFiles } from '../net/tls-config.js';
import { CLUSTER_SECRET_FILE, TLS_DIR } from './cluster.js';

export interface ModeIO {
  out(line: string): void;
  err(line: string): void;
}

/** Runs one node of `mode` with `args` (and `env` added to this process's) until it exits; returns its exit code. */
export function runModeServe(
  mode: SpawnableMode,
  args: readonly string[],
  env: Readonly<Record<string, string>> = {},
): Promise<number> {
  const child = spawn(process.execPath, [mainScript(mode), ...args], {
    stdio: 'inherit',
    env: { ...process.env, ...env },
  });
  const forward = (sig: NodeJS.Signals) => {
    if (child.pid !== undefined) process.kill(child.pid, sig);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code ?? (signal ? 0 : 1));
    });
  });
}

export interface ModeClusterOptions {
  /** Nodes in all (quorum: the leader plus followers). */
  readonly nodes?: number;
  readonly host: string;
  readonly basePort?: number;
  /** Directory of the cluster secret (default ./data). */
  readonly data?: string;
  /** Serve HTTPS with a development certificate in `<data>/tls` (one for every node of this host). */
  readonly tls?: boolean;
}

/**
 * Starts a local cluster of `mode` in its default layout and runs it until SIGINT / SIGTERM. Its nodes share
 * the cluster secret `<data>/cluster.secret`, created if absent.
 */
export async function runModeCluster(mode: SpawnableMode, opts: ModeClusterOptions, io: ModeIO): Promise<number> {
  let cluster: LocalCluster;
  const clusterSecretFile = path.join(path.resolve(opts.data ?? './data'), CLUSTER_SECRET_FILE);
  try {
    let tls: TlsFiles | undefined;
    if (opts.tls === true) {
      const files = await ensureClusterCerts(path.join(path.resolve(opts.data ?? './data'), TLS_DIR), [1], [opts.host]);
      tls = { ...(files.nodes.get(1) as { cert: string; key: string }), ca: files.ca };
      io.out(`TLS: CA ${files.ca} (clients: --cacert ${files.ca})`);
    }
    if (mode === 'quorum') {
      cluster = await spawnQuorumCluster({
        host: opts.host,
        basePort: opts.basePort,
        followers: opts.nodes === undefined ? undefined : opts.nodes - 1,
        clusterSecretFile,
        tls,
      });
    } else if (mode === 'eventual') {
      cluster = await spawnEventualCluster({
        host: opts.host,
        basePort: opts.basePort,
        replicas: opts.nodes,
        clusterSecretFile,
        tls,
      });
    } else {
      const addresses = causalClusterAddresses(opts.nodes ?? 3, opts.basePort ?? 8090, opts.host);
      cluster = await spawnCausalCluster({ addresses, clusterSecretFile, tls });
    }
  } catch (err) {
    io.err(`error: could not start the ${mode} cluster: ${(err as Error).message}`);
    return 1;
  }
  cluster.nodes.forEach((n, i) =>
    io.out(`${mode} node ${mode === 'quorum' && i === 0 ? '(leader)' : i} ${n.url} (pid ${n.pid})`),
  );
  io.out(`${mode} cluster ready: ${cluster.nodes.map((n) => n.url).join(' ')} — Ctrl-C stops it`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  io.out(`stopping the ${mode} cluster`);
  await cluster.stop();
  return 0;
}
