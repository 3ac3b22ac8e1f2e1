/**
 * How the CLI's clients (put, get, del, list, status, chat) verify HTTPS nodes and identify themselves:
 *
 * - `--cacert F` (env QKV_CACERT): the CA certificate the nodes' certificates must be signed by;
 * - otherwise, for `https://` endpoints, the CA of a local cluster: `--cluster-file F` (env QKV_CLUSTER_FILE),
 *   else `./data/cluster.json` if it exists — its `"tls": {"ca": ...}` (relative to the file);
 * - otherwise the system's CAs;
 * - `--cert F --key F` (env QKV_CERT, QKV_KEY): a client certificate, for nodes that identify users by it.
 *
 * Without `-e` (and QKV_ENDPOINTS), a local cluster file that has TLS also gives the endpoints: its nodes'
 * `https://` URLs.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { ClientTls } from '../net/tls-config.js';

export const DEFAULT_CLUSTER_FILE = path.join('data', 'cluster.json');

/** The CLI flags of this module, as commander hands them over. */
export interface ClientTlsFlags {
  cacert?: string;
  cert?: string;
  key?: string;
  clusterFile?: string;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Adds --cacert, --cert, --key and --cluster-file to a client command. */
export function addClientTlsOptions(cmd: Command, env: Env): Command {
  const dflt = (name: string) => {
    const v = env[name];
    return v === undefined || v === '' ? undefined : v;
  };
  return cmd
    .option('--cacert <file>', 'CA certificate to verify https:// nodes with; env QKV_CACERT', dflt('QKV_CACERT'))
    .option('--cert <file>', 'client certificate (PEM) to identify with; env QKV_CERT', dflt('QKV_CERT'))
    .option('--key <file>', 'the client certificate key (PEM); env QKV_KEY', dflt('QKV_KEY'))
    .option(
      '--cluster-file <file>',
      `a local cluster's cluster.json, whose TLS CA verifies https:// nodes; env QKV_CLUSTER_FILE ` +
        `(default ${DEFAULT_CLUSTER_FILE} when it exists)`,
      dflt('QKV_CLUSTER_FILE'),
    );
}

/** What a local cluster file says about TLS: its CA (absolute path) and its nodes' URLs. */
export interface ClusterFileTls {
  readonly ca: string | undefined;
  readonly urls: readonly string[];
}

/** Reads a cluster file's TLS settings; undefined if the file has no "tls" object. */
export function readClusterFileTls(file: string): ClusterFileTls | undefined {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read the cluster file ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (json === null || typeof json !== 'object') return undefined;
  const o = json as { tls?: { ca?: unknown }; nodes?: { http?: unknown }[] };
  if (o.tls === undefined || o.tls === null || typeof o.tls !== 'object') return undefined;
  const ca = typeof o.tls.ca === 'string' ? path.resolve(path.dirname(file), o.tls.ca) : undefined;
  const urls = (Array.isArray(o.nodes) ? o.nodes : [])
    .map((n) => (typeof n?.http === 'string' ? `https://${n.http}` : undefined))
    .filter((u): u is string => u !== undefined);
  return { ca, urls };
}

function readPem(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new Error(`cannot read the ${what} ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The endpoints and TLS options of a client command. `defaulted`: the endpoints are the built-in default (no
 * `-e`, no QKV_ENDPOINTS), so a local TLS cluster file may replace them.
 */
export function resolveClientTls(
  endpoints: readonly string[],
  flags: ClientTlsFlags,
  defaulted: boolean,
  /** The local cluster file looked for without --cluster-file (a chat cluster's is under data/chat). */
  defaultFile = DEFAULT_CLUSTER_FILE,
): { endpoints: readonly string[]; tls: ClientTls } {
  const explicitFile = flags.clusterFile !== undefined && flags.clusterFile !== '';
  const file = explicitFile ? (flags.clusterFile as string) : defaultFile;
  const https = endpoints.some((e) => e.startsWith('https://'));
  let fromFile: ClusterFileTls | undefined;
  if (explicitFile || ((https || defaulted) && existsSync(file))) {
    fromFile = readClusterFileTls(file);
    if (explicitFile && fromFile === undefined && flags.cacert === undefined) {
      throw new Error(`${file} has no "tls" settings (was the cluster started with --tls?)`);
    }
  }
  let eps = endpoints;
  if (defaulted && fromFile !== undefined && fromFile.urls.length > 0) eps = fromFile.urls;
  const caFile = flags.cacert ?? (eps.some((e) => e.startsWith('https://')) ? fromFile?.ca : undefined);
  if ((flags.cert === undefined) !== (flags.key === undefined)) {
    throw new Error('--cert and --key go together (QKV_CERT, QKV_KEY)');
  }
  const tls: ClientTls = {
    ...(caFile === undefined ? {} : { ca: readPem(caFile, 'CA certificate') }),
    ...(flags.cert === undefined ? {} : { cert: readPem(flags.cert, 'client certificate') }),
    ...(flags.key === undefined ? {} : { key: readPem(flags.key, 'client key') }),
  };
  return { endpoints: eps, tls };
}
