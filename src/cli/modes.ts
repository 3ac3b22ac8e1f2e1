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
import { mainScript, type SpawnableMode, type SpawnedNode } from '../modes/common/spawn.js';
import { eventualClusterLayout, quorumClusterLayout } from '../modes/common/layout.js';
import { mkdirSync } from 'node:fs';
import { ensureClusterCerts } from '../net/certs.js';
import type { TlsFiles } from '../net/tls-config.js';
import { CLUSTER_SECRET_FILE, TLS_DIR } from './cluster.js';
import {
  ControlServer,
  NodeSupervisor,
  portInUseMessage,
  probePorts,
  runningSupervisor,
  supervisorFile,
  SUPERVISOR_FILE_ENV,
  type PortUse,
} from './supervisor.js';

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
  /** Restart a node that dies, with backoff (default); false: a death stops the cluster with exit code 1. */
  readonly restart?: boolean;
  /** First restart delay in ms (default 500, doubling to 10 s). */
  readonly restartDelayMs?: number;
}

/** The ports a mode's local cluster listens on, in node order, for the bind-probe. */
function modePorts(mode: SpawnableMode, opts: ModeClusterOptions): PortUse[] {
  if (mode === 'quorum') {
    const l = quorumClusterLayout({
      host: opts.host,
      basePort: opts.basePort,
      followers: opts.nodes === undefined ? undefined : opts.nodes - 1,
    });
    return [l.leader, ...l.followers].map((a, i) => ({ port: a.port, what: `node ${i + 1} (${a.id}) HTTP` }));
  }
  if (mode === 'eventual') {
    return eventualClusterLayout({ host: opts.host, basePort: opts.basePort, replicas: opts.nodes }).map((a, i) => ({
      port: a.port,
      what: `node ${i + 1} (${a.id}) HTTP`,
    }));
  }
  return causalClusterAddresses(opts.nodes ?? 3, opts.basePort ?? 8090, opts.host).map((a, i) => ({
    port: Number(a.slice(a.lastIndexOf(':') + 1)),
    what: `node ${i + 1} HTTP`,
  }));
}

/**
 * Starts a local cluster of `mode` in its default layout and runs it until SIGINT / SIGTERM. Its nodes share
 * the cluster secret `<data>/cluster.secret`, created if absent. A port in use ends it at once; a node that
 * dies is restarted with backoff (or, with `restart: false`, ends the cluster with exit code 1);
 * `<data>/supervisor-<mode>.json` lets `quorumkv node ... --mode <mode>` control single nodes.
 */
export async function runModeCluster(mode: SpawnableMode, opts: ModeClusterOptions, io: ModeIO): Promise<number> {
  const busy = await probePorts(opts.host, modePorts(mode, opts));
  if (busy !== undefined) {
    io.err(portInUseMessage(busy));
    return 1;
  }
  const running = runningSupervisor(path.resolve(opts.data ?? './data'), mode);
  if (running !== undefined) {
    io.err(`error: a ${mode} cluster already runs on ${path.resolve(opts.data ?? './data')} (pid ${running.pid})`);
    return 1;
  }
  // The nodes inherit it: their dashboards reach this supervisor through its file (kill, pause, resume).
  process.env[SUPERVISOR_FILE_ENV] = path.join(path.resolve(opts.data ?? './data'), supervisorFile(mode));
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
  const current = new Map(cluster.nodes.map((n, i) => [i + 1, n]));
  let exitCode = 0;
  let wake: () => void = () => {};
  const ended = new Promise<void>((resolve) => (wake = resolve));
  let control: ControlServer | undefined;
  const sup = new NodeSupervisor(
    [...current.keys()],
    {
      launch: async (id) => {
        const prev = current.get(id) as SpawnedNode;
        const next = await prev.respawn();
        current.set(id, next);
        return next.child;
      },
      url: (id) => current.get(id)?.url ?? '',
    },
    io,
    {
      restart: opts.restart !== false,
      backoff: { initialMs: opts.restartDelayMs ?? 500 },
      onFatal: () => {
        exitCode = 1;
        wake();
      },
      onChange: () => control?.publish(sup.nodes()),
    },
  );
  for (const [id, n] of current) sup.adopt(id, n.child);
  const dataDir = path.resolve(opts.data ?? './data');
  try {
    mkdirSync(dataDir, { recursive: true });
    control = await ControlServer.start(dataDir, mode, (action, id) => sup.control(action, id));
    control.publish(sup.nodes());
  } catch (err) {
    io.err(`warning: no control endpoint (quorumkv node will not reach this cluster): ${(err as Error).message}`);
  }
  cluster.nodes.forEach((n, i) =>
    io.out(`${mode} node ${i + 1}${mode === 'quorum' && i === 0 ? ' (leader)' : ''} ${n.url} (pid ${n.pid})`),
  );
  io.out(`${mode} cluster ready: ${cluster.nodes.map((n) => n.url).join(' ')} — Ctrl-C stops it`);
  io.out(
    `nodes that die are ${opts.restart === false ? 'not restarted (--no-restart)' : 'restarted'}; ` +
      `\`quorumkv node stop|start|restart|pause|resume N --mode ${mode}` +
      `${opts.data === undefined || opts.data === './data' ? '' : ` --data ${opts.data}`}\` controls one node`,
  );
  const onSignal = (): void => wake();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  await ended;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  io.out(`stopping the ${mode} cluster`);
  await sup.stopAll();
  await control?.close();
  await cluster.stop();
  return exitCode;
}
