/**
 * Node configuration: the typed `NodeConfig` the servers start from, and its parser. Sources, strongest
 * first: command-line flags, environment variables (`QKV_*`), the cluster config file, defaults.
 *
 * Cluster config file (JSON):
 * ```json
 * { "nodes": [ { "id": 1, "peer": "127.0.0.1:7001", "http": "127.0.0.1:8081" }, ... ],
 *   "mode": "raft", "tickMs": 50, ... any tunable below by its NodeConfig name ... }
 * ```
 * With a file, `--id` picks this node; its peer and HTTP addresses come from its entry.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TlsConfigError, tlsFilesFrom, type TlsFiles } from '../net/tls-config.js';
import type { NodeId } from '../raft/types.js';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Replication modes `quorumkv serve` can start (only raft exists so far). */
export type Mode = 'raft' | 'quorum' | 'causal' | 'eventual';
export const MODES: readonly Mode[] = ['raft', 'quorum', 'causal', 'eventual'];

/** What a raft node replicates: the key-value store or the chat service. */
export type App = 'kv' | 'chat';
export const APPS: readonly App[] = ['kv', 'chat'];

export interface NodeConfig {
  /** This node's id (1..N). */
  readonly id: NodeId;
  /** Peer-transport address of every voter, this node included (it listens on its own entry). */
  readonly peers: ReadonlyMap<NodeId, HostPort>;
  /** HTTP listen address of this node. */
  readonly http: HostPort;
  /**
   * HTTP address of every node this one knows (itself included), for forwarding to the leader and for
   * `leader_url`. Known from the cluster config file or `--peer-http`; may be empty otherwise.
   */
  readonly peerHttp: ReadonlyMap<NodeId, HostPort>;
  readonly dataDir: string;
  /** Raft tick interval in ms (default 50). */
  readonly tickMs: number;
  /** Election timeout in ticks, randomised in [electionTicks, 2*electionTicks) (default 10). */
  readonly electionTicks: number;
  /** Heartbeat interval in ticks (default 1). */
  readonly heartbeatTicks: number;
  /** Applied entries between snapshots (default 10000). */
  readonly snapshotThreshold: number;
  /** Longest a client request may wait before a 503 (default 3000 ms). */
  readonly requestTimeoutMs: number;
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  /** Followers forward client requests to the leader (true) or answer 307 (false). Default true. */
  readonly forward: boolean;
  readonly logLevel: LogLevel;
  /** What the node replicates: the key-value store (default) or the chat service. */
  readonly app?: App;
  /**
   * The cluster secret file every node of the cluster shares (peer credentials, see docs/security.md).
   * Without one, a node runs only if it listens on loopback alone, or with `insecure`.
   */
  readonly clusterSecretFile?: string;
  /** Run without a cluster secret although listening beyond loopback (no peer authentication). */
  readonly insecure?: boolean;
  /**
   * The address the peer transport listens on, when not this node's own `peers` entry (which is then only
   * what the other nodes dial): `0.0.0.0` in a container whose entry is a DNS name.
   */
  readonly peerListenHost?: string;
  /**
   * TLS: the node serves HTTPS with this certificate and key; with a CA it verifies the nodes it calls, asks
   * clients for certificates and requires peers' certificates (docs/security.md). Absolute paths.
   */
  readonly tls?: TlsFiles;
}

export interface ServeConfig {
  readonly mode: Mode;
  readonly node: NodeConfig;
}

/** Raw `serve` flags as commander hands them over (strings, before validation). */
export interface ServeFlags {
  id?: string;
  peers?: string;
  http?: string;
  peerHttp?: string;
  dataDir?: string;
  config?: string;
  mode?: string;
  tickMs?: string;
  electionTicks?: string;
  heartbeatTicks?: string;
  snapshotThreshold?: string;
  requestTimeoutMs?: string;
  maxKeyBytes?: string;
  maxValueBytes?: string;
  /** false when `--no-forward` was given. */
  forward?: boolean;
  logLevel?: string;
  app?: string;
  clusterSecretFile?: string;
  /** true when `--insecure` was given. */
  insecure?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  /** true when `--id-from-hostname` was given. */
  idFromHostname?: boolean;
  peerListen?: string;
}

/**
 * The node id of a host named like a StatefulSet's pod, `<name>-<ordinal>`: ordinal + 1 (pod `qkv-0` is
 * node 1). Throws ConfigError for a name without a trailing ordinal.
 */
export function idFromHostname(hostname: string): NodeId {
  const short = hostname.split('.')[0] ?? '';
  const m = /-(\d{1,9})$/.exec(short);
  if (m === null) {
    throw new ConfigError(
      `--id-from-hostname: the host name "${hostname}" does not end in -<ordinal> (a StatefulSet pod's name, e.g. qkv-0)`,
    );
  }
  return Number(m[1]) + 1;
}

export const DEFAULTS = {
  tickMs: 50,
  electionTicks: 10,
  heartbeatTicks: 1,
  snapshotThreshold: 10000,
  requestTimeoutMs: 3000,
  maxKeyBytes: 1024,
  maxValueBytes: 1048576,
  forward: true,
  logLevel: 'warn' as LogLevel,
};

/** Tunables: NodeConfig field, flag key, environment variable, lower bound. */
const TUNABLES = [
  ['tickMs', 'QKV_TICK_MS', 1],
  ['electionTicks', 'QKV_ELECTION_TICKS', 2],
  ['heartbeatTicks', 'QKV_HEARTBEAT_TICKS', 1],
  ['snapshotThreshold', 'QKV_SNAPSHOT_THRESHOLD', 1],
  ['requestTimeoutMs', 'QKV_REQUEST_TIMEOUT_MS', 1],
  ['maxKeyBytes', 'QKV_MAX_KEY_BYTES', 1],
  ['maxValueBytes', 'QKV_MAX_VALUE_BYTES', 1],
] as const;

type Tunable = (typeof TUNABLES)[number][0];

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export function parseHostPort(s: string, what: string): HostPort {
  const m = /^(.*):(\d+)$/.exec(s.trim());
  if (m === null) throw new ConfigError(`${what}: expected host:port, got "${s}"`);
  let host = m[1] as string;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const port = Number(m[2]);
  if (host.length === 0) throw new ConfigError(`${what}: missing host in "${s}"`);
  if (port > 65535) throw new ConfigError(`${what}: port out of range in "${s}"`);
  return { host, port };
}

export function parseId(v: unknown, what: string): NodeId {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < 1)
    throw new ConfigError(`${what}: expected a node id (integer >= 1), got ${JSON.stringify(v)}`);
  return n;
}

/** Parses "1=127.0.0.1:7001,2=127.0.0.1:7002". */
export function parseAddressList(s: string, what: string): Map<NodeId, HostPort> {
  const out = new Map<NodeId, HostPort>();
  for (const part of s
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0)) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new ConfigError(`${what}: expected id=host:port, got "${part}"`);
    const id = parseId(part.slice(0, eq), what);
    if (out.has(id)) throw new ConfigError(`${what}: node ${id} listed twice`);
    out.set(id, parseHostPort(part.slice(eq + 1), `${what} (node ${id})`));
  }
  if (out.size === 0) throw new ConfigError(`${what}: empty list`);
  return out;
}

function parseInteger(v: unknown, what: string, min: number): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min)
    throw new ConfigError(`${what}: expected an integer >= ${min}, got ${JSON.stringify(v)}`);
  return n;
}

function parseBool(v: unknown, what: string): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(s)) return true;
    if (['0', 'false', 'no', 'off'].includes(s)) return false;
  }
  throw new ConfigError(`${what}: expected true or false, got ${JSON.stringify(v)}`);
}

function parseChoice<T extends string>(v: unknown, what: string, choices: readonly T[]): T {
  if (typeof v === 'string' && (choices as readonly string[]).includes(v)) return v as T;
  throw new ConfigError(`${what}: expected one of ${choices.join(', ')}, got ${JSON.stringify(v)}`);
}

export interface ClusterFileNode {
  readonly id: NodeId;
  readonly peer: HostPort;
  readonly http: HostPort;
  /** This node's certificate and key, as written in the file (relative to the file's directory). */
  readonly tls?: { readonly cert?: string; readonly key?: string };
}

export interface ClusterFile {
  readonly nodes: readonly ClusterFileNode[];
  /** Other top-level fields (mode, tunables), unvalidated. */
  readonly settings: Readonly<Record<string, unknown>>;
}

/** Validates the JSON of a cluster config file. */
export function parseClusterFile(text: string, file: string): ClusterFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${file}: invalid JSON: ${(err as Error).message}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    throw new ConfigError(`${file}: not a JSON object`);
  const { nodes, ...settings } = json as Record<string, unknown>;
  if (!Array.isArray(nodes) || nodes.length === 0) throw new ConfigError(`${file}: "nodes" must be a non-empty array`);
  const seen = new Set<NodeId>();
  const parsed = nodes.map((n: unknown, i): ClusterFileNode => {
    const where = `${file}: nodes[${i}]`;
    if (n === null || typeof n !== 'object') throw new ConfigError(`${where}: not an object`);
    const o = n as Record<string, unknown>;
    const id = parseId(o.id, `${where}.id`);
    if (seen.has(id)) throw new ConfigError(`${where}: duplicate id ${id}`);
    seen.add(id);
    if (typeof o.peer !== 'string') throw new ConfigError(`${where}.peer: expected "host:port"`);
    if (typeof o.http !== 'string') throw new ConfigError(`${where}.http: expected "host:port"`);
    const tls = o.tls === undefined ? undefined : parseTlsField(o.tls, `${where}.tls`);
    return {
      id,
      peer: parseHostPort(o.peer, `${where}.peer`),
      http: parseHostPort(o.http, `${where}.http`),
      ...(tls === undefined ? {} : { tls }),
    };
  });
  return { nodes: parsed, settings };
}

/** A `tls` object of a cluster file: `{"ca"?, "cert"?, "key"?}`, file names. */
function parseTlsField(v: unknown, where: string): { ca?: string; cert?: string; key?: string } {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(`${where}: expected an object`);
  const out: Record<string, string> = {};
  for (const [k, f] of Object.entries(v as Record<string, unknown>)) {
    if (k !== 'ca' && k !== 'cert' && k !== 'key') throw new ConfigError(`${where}: unknown field "${k}"`);
    if (typeof f !== 'string' || f === '') throw new ConfigError(`${where}.${k}: expected a file name`);
    out[k] = f;
  }
  return out;
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Builds the configuration of `quorumkv serve` from flags, environment and (optionally) a cluster file.
 * Throws ConfigError with a message naming the offending flag, variable or file field.
 */
export function parseServeConfig(
  flags: ServeFlags,
  env: Env = process.env,
  readFile: (file: string) => string = (f) => readFileSync(f, 'utf8'),
): ServeConfig {
  const pick = (flag: string | undefined, envName: string): string | undefined => {
    if (flag !== undefined) return flag;
    const e = env[envName];
    return e !== undefined && e !== '' ? e : undefined;
  };

  const configPath = pick(flags.config, 'QKV_CONFIG');
  let file: ClusterFile | undefined;
  if (configPath !== undefined) {
    let text: string;
    try {
      text = readFile(configPath);
    } catch (err) {
      throw new ConfigError(`cannot read config file ${configPath}: ${(err as Error).message}`);
    }
    file = parseClusterFile(text, configPath);
  }
  const settings = file?.settings ?? {};

  const idRaw = pick(flags.id, 'QKV_ID');
  const fromHostRaw = flags.idFromHostname === true ? true : pick(undefined, 'QKV_ID_FROM_HOSTNAME');
  const fromHost =
    fromHostRaw === undefined ? false : fromHostRaw === true || parseBool(fromHostRaw, 'QKV_ID_FROM_HOSTNAME');
  if (fromHost && idRaw !== undefined) throw new ConfigError('give --id or --id-from-hostname, not both');
  let id: NodeId;
  if (fromHost) id = idFromHostname(pick(undefined, 'HOSTNAME') ?? os.hostname());
  else if (idRaw !== undefined) id = parseId(idRaw, flags.id !== undefined ? '--id' : 'QKV_ID');
  else if (file !== undefined && file.nodes.length === 1) id = (file.nodes[0] as ClusterFileNode).id;
  else throw new ConfigError('--id (or QKV_ID) is required');
  const self = file?.nodes.find((n) => n.id === id);
  if (file !== undefined && self === undefined) throw new ConfigError(`node ${id} is not in ${configPath}`);

  const peersRaw = pick(flags.peers, 'QKV_PEERS');
  let peers: Map<NodeId, HostPort>;
  if (peersRaw !== undefined) peers = parseAddressList(peersRaw, flags.peers !== undefined ? '--peers' : 'QKV_PEERS');
  else if (file !== undefined) peers = new Map(file.nodes.map((n) => [n.id, n.peer]));
  else peers = new Map([[id, { host: '127.0.0.1', port: 7000 + id }]]);
  if (!peers.has(id)) throw new ConfigError(`the peer list must include this node (${id}) with its own peer address`);

  const httpRaw = pick(flags.http, 'QKV_HTTP');
  const http =
    httpRaw !== undefined
      ? parseHostPort(httpRaw, flags.http !== undefined ? '--http' : 'QKV_HTTP')
      : (self?.http ?? { host: '127.0.0.1', port: 8080 + id });

  const peerHttpRaw = pick(flags.peerHttp, 'QKV_PEER_HTTP');
  const peerHttp =
    peerHttpRaw !== undefined
      ? parseAddressList(peerHttpRaw, flags.peerHttp !== undefined ? '--peer-http' : 'QKV_PEER_HTTP')
      : new Map(file?.nodes.map((n) => [n.id, n.http]) ?? []);
  peerHttp.set(id, http);

  const dataDir = path.resolve(pick(flags.dataDir, 'QKV_DATA_DIR') ?? path.join('data', `node-${id}`));

  const tun = {} as Record<Tunable, number>;
  for (const [field, envName, min] of TUNABLES) {
    const flag = flags[field];
    if (flag !== undefined) tun[field] = parseInteger(flag, `--${kebab(field)}`, min);
    else if (env[envName] !== undefined && env[envName] !== '') tun[field] = parseInteger(env[envName], envName, min);
    else if (settings[field] !== undefined) tun[field] = parseInteger(settings[field], `${configPath}: ${field}`, min);
    else tun[field] = DEFAULTS[field];
  }
  if (tun.heartbeatTicks >= tun.electionTicks) {
    throw new ConfigError(
      `heartbeat ticks (${tun.heartbeatTicks}) must be below election ticks (${tun.electionTicks})`,
    );
  }

  let forward: boolean = DEFAULTS.forward;
  if (flags.forward === false) forward = false;
  else if (env.QKV_FORWARD !== undefined && env.QKV_FORWARD !== '') forward = parseBool(env.QKV_FORWARD, 'QKV_FORWARD');
  else if (settings.forward !== undefined) forward = parseBool(settings.forward, `${configPath}: forward`);

  const levelRaw = pick(flags.logLevel, 'QKV_LOG_LEVEL') ?? settings.logLevel;
  const logLevel = levelRaw === undefined ? DEFAULTS.logLevel : parseChoice(levelRaw, 'log level', LOG_LEVELS);

  const modeRaw = pick(flags.mode, 'QKV_MODE') ?? settings.mode;
  const mode = modeRaw === undefined ? 'raft' : parseChoice(modeRaw, 'mode', MODES);

  const appRaw = pick(flags.app, 'QKV_APP') ?? settings.app;
  const app = appRaw === undefined ? 'kv' : parseChoice(appRaw, 'app', APPS);
  if (app === 'chat' && mode !== 'raft') throw new ConfigError('--app chat runs on the raft mode only');

  // A relative secret file in the config file is relative to the config file's directory.
  const secretRaw = pick(flags.clusterSecretFile, 'QKV_CLUSTER_SECRET_FILE');
  let clusterSecretFile: string | undefined;
  if (secretRaw !== undefined) clusterSecretFile = path.resolve(secretRaw);
  else if (settings.clusterSecretFile !== undefined) {
    if (typeof settings.clusterSecretFile !== 'string' || settings.clusterSecretFile === '') {
      throw new ConfigError(`${configPath}: clusterSecretFile must be a file name`);
    }
    clusterSecretFile = path.resolve(path.dirname(configPath ?? '.'), settings.clusterSecretFile);
  }
  let insecure = false;
  if (flags.insecure === true) insecure = true;
  else if (env.QKV_INSECURE !== undefined && env.QKV_INSECURE !== '')
    insecure = parseBool(env.QKV_INSECURE, 'QKV_INSECURE');
  else if (settings.insecure !== undefined) insecure = parseBool(settings.insecure, `${configPath}: insecure`);

  const peerListenHost = pick(flags.peerListen, 'QKV_PEER_LISTEN');
  if (peerListenHost !== undefined && !/^[A-Za-z0-9.:_-]+$/.test(peerListenHost)) {
    throw new ConfigError(`--peer-listen: expected a host or address, got ${JSON.stringify(peerListenHost)}`);
  }

  // TLS: each file from its flag, else its variable, else the config file (the node's entry, then the top-level
  // "tls" object; relative to the file's directory).
  const fileTls = settings.tls === undefined ? {} : parseTlsField(settings.tls, `${configPath}: tls`);
  const nodeTls = self?.tls ?? {};
  const base = path.dirname(configPath ?? '.');
  const tlsPart = (flag: string | undefined, envName: string, fromFile: string | undefined) => {
    const v = pick(flag, envName);
    return v !== undefined ? path.resolve(v) : fromFile === undefined ? undefined : path.resolve(base, fromFile);
  };
  let tls: TlsFiles | undefined;
  try {
    tls = tlsFilesFrom({
      cert: tlsPart(flags.tlsCert, 'QKV_TLS_CERT', nodeTls.cert ?? fileTls.cert),
      key: tlsPart(flags.tlsKey, 'QKV_TLS_KEY', nodeTls.key ?? fileTls.key),
      ca: tlsPart(flags.tlsCa, 'QKV_TLS_CA', fileTls.ca),
    });
  } catch (err) {
    if (err instanceof TlsConfigError) throw new ConfigError(err.message);
    throw err;
  }

  return {
    mode,
    node: {
      id,
      peers,
      http,
      peerHttp,
      dataDir,
      ...tun,
      forward,
      logLevel,
      app,
      clusterSecretFile,
      insecure,
      ...(peerListenHost === undefined ? {} : { peerListenHost }),
      ...(tls === undefined ? {} : { tls }),
    },
  };
}

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** The cluster file `quorumkv cluster` writes for N local nodes. */
export function localClusterFile(
  n: number,
  host: string,
  basePeerPort: number,
  baseHttpPort: number,
  settings: Readonly<Record<string, unknown>> = {},
  /** More fields of node `id`'s entry (its TLS files). */
  nodeExtra: (id: number) => Readonly<Record<string, unknown>> = () => ({}),
): string {
  const nodes = Array.from({ length: n }, (_, i) => ({
    id: i + 1,
    peer: `${host}:${basePeerPort + i}`,
    http: `${host}:${baseHttpPort + i}`,
    ...nodeExtra(i + 1),
  }));
  return JSON.stringify({ ...settings, nodes }, null, 2) + '\n';
}
