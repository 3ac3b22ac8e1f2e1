/**
 * `quorumkv cluster`: a local N-node cluster as child processes of `quorumkv serve`.
 *
 * Writes `<data>/cluster.json` and, unless it exists, the cluster secret `<data>/cluster.secret` (mode 0600)
 * that the config file names, so every node shares one peer credential. Starts one `serve` child per node
 * (same Node binary and main.js), prefixes their output with the node id, prints the endpoints and a ready
 * line once every node answers /health.
 * Before anything starts, every HTTP and peer port is bind-probed: one in use ends the command at once with
 * the port named (a second cluster on the same ports). SIGINT / SIGTERM are forwarded to the children (by
 * PID), which are awaited (SIGKILL after 10 s). A child that dies on its own is logged and restarted with
 * backoff (0.5 s doubling to 10 s), keeping its data, while the others keep serving; with `restart: false`
 * (`--no-restart`) it ends the cluster with exit code 1 instead. A node that died because its port was taken
 * is never restarted. `<data>/supervisor.json` lets `quorumkv node stop|start|restart|pause|resume N` reach
 * this supervisor (supervisor.ts).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { fetch as undiciFetch, type Agent } from 'undici';
import { ensureClusterCerts } from '../net/certs.js';
import { tlsAgent } from '../net/tls-config.js';
import { ensureSecretFile } from '../net/peer-auth.js';
import { bootstrapClusterAuth } from './auth-commands.js';
import { localClusterFile } from './config.js';
import {
  ControlServer,
  NodeSupervisor,
  portInUseMessage,
  probePorts,
  runningSupervisor,
  SUPERVISOR_FILE,
  SUPERVISOR_FILE_ENV,
  type PortUse,
} from './supervisor.js';

export interface ClusterOptions {
  readonly nodes: number;
  readonly host: string;
  readonly basePeerPort: number;
  readonly baseHttpPort: number;
  readonly data: string;
  readonly restart: boolean;
  /** What the nodes replicate (default kv); recorded in the cluster file. */
  readonly app?: 'kv' | 'chat';
  /** Once ready, create a root user (password in `<data>/root.credential`) and enable auth (kv only). */
  readonly auth?: boolean;
  /**
   * Serve HTTPS: development certificates in `<data>/tls` (a CA and one certificate per node, made once),
   * named by the cluster file, which clients read to find the CA.
   */
  readonly tls?: boolean;
  /** Extra `serve` flags for every node (tunables, --no-forward, --log-level). */
  readonly serveArgs: readonly string[];
  /** Time to wait for every node's /health, in ms. */
  readonly readyTimeoutMs: number;
  /** Script each child runs with `serve ...` arguments (default: this CLI's main.js). */
  readonly script?: string;
  /** Stops the cluster like a signal would (for embedding and tests). */
  readonly signal?: AbortSignal;
  /** First delay before restarting a dead node (default 500 ms; it doubles up to 10 s). */
  readonly restartDelayMs?: number;
}

export interface ClusterIO {
  out(line: string): void;
  err(line: string): void;
}

const MAIN_SCRIPT = fileURLToPath(new URL('./main.js', import.meta.url));
/** The cluster secret's file name in a local cluster's data directory. */
export const CLUSTER_SECRET_FILE = 'cluster.secret';
/** The directory of a local cluster's certificates, in its data directory. */
export const TLS_DIR = 'tls';
const STOP_GRACE_MS = 10_000;

async function healthy(url: string, agent: Agent | undefined): Promise<boolean> {
  try {
    const init = { signal: AbortSignal.timeout(500) };
    const res =
      agent === undefined
        ? await fetch(`${url}/health`, init)
        : await undiciFetch(`${url}/health`, { ...init, dispatcher: agent });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

/** Runs the cluster until a signal (exit code 0) or an unexpected child death (exit code 1). */
export async function runCluster(o: ClusterOptions, io: ClusterIO): Promise<number> {
  const ports: PortUse[] = [];
  for (let i = 0; i < o.nodes; i++) {
    ports.push({ port: o.baseHttpPort + i, what: `node ${i + 1} HTTP` });
    ports.push({ port: o.basePeerPort + i, what: `node ${i + 1} peer` });
  }
  const busy = await probePorts(o.host, ports);
  if (busy !== undefined) {
    io.err(portInUseMessage(busy));
    return 1;
  }
  const dataDir = path.resolve(o.data);
  const running = runningSupervisor(dataDir);
  if (running !== undefined) {
    io.err(
      `error: a cluster already runs on ${dataDir} (supervisor pid ${running.pid}); stop it or give another --data`,
    );
    return 1;
  }
  mkdirSync(dataDir, { recursive: true });
  const configFile = path.join(dataDir, 'cluster.json');
  ensureSecretFile(path.join(dataDir, CLUSTER_SECRET_FILE));
  // TLS: the CA and node certificates under <data>/tls, named relative to the config file like the secret.
  let agent: Agent | undefined;
  let nodeTls: ((id: number) => Record<string, unknown>) | undefined;
  if (o.tls === true) {
    const ids = Array.from({ length: o.nodes }, (_, i) => i + 1);
    const files = await ensureClusterCerts(path.join(dataDir, TLS_DIR), ids, [o.host]);
    agent = tlsAgent({ ca: readFileSync(files.ca) });
    nodeTls = (id) => ({ tls: { cert: `${TLS_DIR}/node-${id}.pem`, key: `${TLS_DIR}/node-${id}-key.pem` } });
    io.out(`TLS: CA ${files.ca} (clients: --cacert ${files.ca}, or --cluster-file ${configFile})`);
  }
  // Relative to the config file's directory: the data directory can move.
  const settings = {
    ...(o.app === 'chat' ? { app: 'chat' } : {}),
    clusterSecretFile: CLUSTER_SECRET_FILE,
    ...(o.tls === true ? { tls: { ca: `${TLS_DIR}/ca.pem` } } : {}),
  };
  writeFileSync(configFile, localClusterFile(o.nodes, o.host, o.basePeerPort, o.baseHttpPort, settings, nodeTls));
  const scheme = o.tls === true ? 'https' : 'http';
  const urls = Array.from({ length: o.nodes }, (_, i) => `${scheme}://${o.host}:${o.baseHttpPort + i}`);

  let stopping = false;
  let exitCode = 0;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const ctl: { server?: ControlServer } = {};

  const launch = async (id: number, output: (line: string) => void) => {
    const args = [
      o.script ?? MAIN_SCRIPT,
      'serve',
      '--config',
      configFile,
      '--id',
      String(id),
      '--data-dir',
      path.join(dataDir, `node-${id}`),
      ...o.serveArgs,
    ];
    const proc = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      // The nodes' dashboards reach this supervisor through its file (kill, pause, resume buttons).
      env: { ...process.env, [SUPERVISOR_FILE_ENV]: path.join(dataDir, SUPERVISOR_FILE) },
    });
    for (const [stream, write] of [
      [proc.stdout, io.out],
      [proc.stderr, io.err],
    ] as const) {
      if (stream !== null) {
        createInterface({ input: stream }).on('line', (l) => {
          output(l);
          write(`[node ${id}] ${l}`);
        });
      }
    }
    proc.on('error', (err) => io.err(`node ${id}: cannot start: ${err.message}`));
    return proc;
  };
  const ids = Array.from({ length: o.nodes }, (_, i) => i + 1);
  const sup = new NodeSupervisor(ids, { launch, url: (id) => urls[id - 1] as string }, io, {
    restart: o.restart,
    backoff: { initialMs: o.restartDelayMs ?? 500 },
    onFatal: () => {
      exitCode = 1;
      void stopAll();
    },
    onChange: () => ctl.server?.publish(sup.nodes()),
  });

  const stopAll = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await sup.stopAll(STOP_GRACE_MS);
    await ctl.server?.close();
    io.out('cluster stopped');
    finish();
  };

  const onSignal = (sig: NodeJS.Signals): void => {
    io.out(`${sig}: stopping the cluster`);
    void stopAll();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const onAbort = (): void => {
    io.out('stop requested: stopping the cluster');
    void stopAll();
  };
  o.signal?.addEventListener('abort', onAbort, { once: true });

  const control = await ControlServer.start(dataDir, 'raft', (action, id) => sup.control(action, id));
  ctl.server = control;
  await Promise.all(ids.map((id) => sup.start(id)));
  control.publish(sup.nodes());
  io.out(`starting ${o.nodes} ${o.app === 'chat' ? 'chat ' : ''}nodes, data under ${dataDir}`);
  urls.forEach((u, i) =>
    io.out(`  node ${i + 1}: ${u}  (peer ${o.host}:${o.basePeerPort + i}, pid ${sup.pid(i + 1) ?? '-'})`),
  );

  const deadline = Date.now() + o.readyTimeoutMs;
  const up = new Set<number>();
  while (!stopping && up.size < urls.length) {
    await Promise.all(
      urls.map(async (u, i) => {
        if (!up.has(i) && (await healthy(u, agent))) up.add(i);
      }),
    );
    if (up.size === urls.length) {
      io.out(`cluster ready: ${urls.join(',')}`);
      if (o.auth === true) {
        try {
          const ca = o.tls === true ? readFileSync(path.join(dataDir, TLS_DIR, 'ca.pem')) : undefined;
          await bootstrapClusterAuth(urls, dataDir, io, ca);
        } catch (err) {
          io.err(`cannot enable authentication: ${(err as Error).message}`);
          exitCode = 1;
          void stopAll();
          break;
        }
      }
      io.out(
        `press Ctrl-C to stop; nodes that die are ${o.restart ? 'restarted' : 'not restarted (--no-restart)'}; ` +
          `\`quorumkv node stop|start|restart|pause|resume N${o.data === './data' ? '' : ` --data ${o.data}`}\` ` +
          'controls one node',
      );
      break;
    }
    if (Date.now() > deadline) {
      io.err(`nodes not healthy after ${o.readyTimeoutMs} ms: ${urls.filter((_, i) => !up.has(i)).join(', ')}`);
      exitCode = 1;
      void stopAll();
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  await finished;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  o.signal?.removeEventListener('abort', onAbort);
  return exitCode;
}
