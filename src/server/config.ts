import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { HostPort, LogLevel, NodeConfig } from '../cli/config.js';
import type { NodeId } from '../raft/types.js';

export type { HostPort, NodeConfig } from '../cli/config.js';

/** The CLI's NodeConfig plus server-only knobs (tests and benchmarks). */
export interface ServerConfig extends NodeConfig {
  /** Storage backend: `disk` (default) or `memory` (tests of the HTTP layer only; not durable). */
  readonly storage?: 'disk' | 'memory';
  /** Entries kept behind a snapshot for slow followers (default: min(1000, snapshotThreshold / 2)). */
  readonly snapshotTrailing?: number;
  /** Chat app: login attempts per username per minute (default 10). */
  readonly chatLoginsPerMinute?: number;
  /** Chat app: how long a login token is valid, in ms (default 24 hours). */
  readonly chatSessionTtlMs?: number;
  /** Chat app, tests of the checker only: a planted bug in the state machine. */
  readonly chatPlantedBug?: 'reapply-after-restart';
  /** Zero-filled bytes kept ahead of the log's write position (default 16 MiB; 0: the log grows per write). */
  readonly walPreallocateBytes?: number;
  /** Key-value app: most recent changes kept for `GET /watch` (default 10,000). */
  readonly watchHistory?: number;
  /** Key-value app: most estimated bytes of changes kept for `GET /watch` (default 64 MiB). */
  readonly watchHistoryBytes?: number;
}

export const CONFIG_DEFAULTS = {
  tickMs: 50,
  electionTicks: 10,
  heartbeatTicks: 1,
  snapshotThreshold: 10_000,
  requestTimeoutMs: 3000,
  maxKeyBytes: 1024,
  maxValueBytes: 1024 * 1024,
  forward: true,
  logLevel: 'warn' as LogLevel,
};

/** The JSON file form: `{"id":1,"nodes":[{"id":1,"host":"127.0.0.1","raftPort":7001,"httpPort":8001},...],...}`. */
export interface ConfigFile {
  id: number;
  nodes: { id: number; host: string; raftPort: number; httpPort: number }[];
  dataDir: string;
  tickMs?: number;
  electionTicks?: number;
  heartbeatTicks?: number;
  snapshotThreshold?: number;
  snapshotTrailing?: number;
  requestTimeoutMs?: number;
  maxKeyBytes?: number;
  maxValueBytes?: number;
  forward?: boolean;
  logLevel?: LogLevel;
  storage?: 'disk' | 'memory';
  app?: 'kv' | 'chat';
  chatLoginsPerMinute?: number;
  chatSessionTtlMs?: number;
  chatPlantedBug?: 'reapply-after-restart';
  watchHistory?: number;
  watchHistoryBytes?: number;
  /** The cluster secret file (peer credentials); relative to the config file's directory. */
  walPreallocateBytes?: number;
  clusterSecretFile?: string;
  /** Run without a cluster secret although listening beyond loopback. */
  insecure?: boolean;
  /** TLS files (see NodeConfig.tls); relative to the config file's directory. */
  tls?: { cert: string; key: string; ca?: string };
}

export function configFromFile(file: ConfigFile): ServerConfig {
  if (!Number.isInteger(file.id) || file.id <= 0) throw new Error('config: id must be a positive integer');
  if (!Array.isArray(file.nodes) || file.nodes.length === 0) throw new Error('config: nodes must be a non-empty list');
  const peers = new Map<NodeId, HostPort>();
  const peerHttp = new Map<NodeId, HostPort>();
  for (const n of file.nodes) {
    peers.set(n.id, { host: n.host, port: n.raftPort });
    peerHttp.set(n.id, { host: n.host, port: n.httpPort });
  }
  const self = peerHttp.get(file.id);
  if (!self) throw new Error(`config: node ${file.id} is not in nodes`);
  if (typeof file.dataDir !== 'string') throw new Error('config: dataDir is required');
  return {
    ...CONFIG_DEFAULTS,
    ...stripUndefined(file),
    id: file.id,
    peers,
    peerHttp,
    http: self,
    dataDir: file.dataDir,
  };
}

export function loadConfigFile(file: string): ServerConfig {
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as ConfigFile;
  if (typeof parsed.clusterSecretFile === 'string' && parsed.clusterSecretFile !== '') {
    parsed.clusterSecretFile = path.resolve(path.dirname(file), parsed.clusterSecretFile);
  }
  if (parsed.tls !== undefined) {
    const dir = path.dirname(file);
    const { cert, key, ca } = parsed.tls;
    parsed.tls = {
      cert: path.resolve(dir, cert),
      key: path.resolve(dir, key),
      ...(ca === undefined ? {} : { ca: path.resolve(dir, ca) }),
    };
  }
  return configFromFile(parsed);
}

function stripUndefined(file: ConfigFile): Partial<ServerConfig> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(file)) if (v !== undefined && k !== 'nodes') out[k] = v;
  return out as Partial<ServerConfig>;
}
