/**
 * Backup and restore of a raft-mode cluster (etcd's `snapshot save` / `snapshot restore` are the model):
 *
 *   quorumkv snapshot save FILE [-e URLS] [--user root:PW | --token T] [--cluster-secret-file F] [TLS flags]
 *     asks a node for `GET /admin/snapshot` (followers redirect to the leader), checks the file's checksum and
 *     writes it atomically (temporary file, fsync, rename, directory fsync);
 *   quorumkv snapshot restore FILE --data DIR [--nodes N | --ids 1,2,3]
 *     seeds DIR/node-<id> for `quorumkv cluster --data DIR`, or with --data-dir DIR one node's directory
 *     (for `quorumkv serve --data-dir DIR`, one pod's volume);
 *   quorumkv snapshot status FILE
 *     checks a file and prints its header.
 *
 * See src/storage/backup.ts for the file and what a restored cluster starts from, and docs/deploy.md.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { authorizationHeader } from '../client/client.js';
import { clientFetch } from '../client/fetch.js';
import { KvStateMachine } from '../kv/state-machine.js';
import { PeerAuth, loadSecretFile } from '../net/peer-auth.js';
import { decodeBackup, seedDataDir, type DecodedBackup } from '../storage/backup.js';
import { resolveClientTls } from './client-tls.js';
import { DEFAULT_ENDPOINTS, type CommonFlags } from './kv-commands.js';

export interface SnapshotIO {
  out(line: string): void;
  err(line: string): void;
  readonly env: Readonly<Record<string, string | undefined>>;
  exit(code: number): void;
}

const SNAPSHOT_PATH = '/admin/snapshot';

interface SaveFlags extends CommonFlags {
  clusterSecretFile?: string;
}

class SaveError extends Error {}

function fsyncPath(p: string): void {
  const fd = openSync(p, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes `bytes` to `file` durably and atomically. */
function writeFileDurably(file: string, bytes: Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, bytes, { mode: 0o600 });
    fsyncPath(tmp);
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncPath(path.dirname(path.resolve(file)));
}

function errorOf(text: string): string {
  try {
    const j = JSON.parse(text) as { error?: unknown };
    if (typeof j.error === 'string') return j.error;
  } catch {
    // not JSON
  }
  return text.slice(0, 200);
}

/** Fetches a backup from the cluster: each endpoint in turn, following a follower's redirect to the leader. */
export async function fetchBackup(flags: SaveFlags, env: SnapshotIO['env']): Promise<{ bytes: Buffer; from: string }> {
  const endpoints = flags.endpoints
    .split(',')
    .map((e) => e.trim().replace(/\/+$/, ''))
    .filter((e) => e.length > 0);
  const resolved = resolveClientTls(endpoints, flags, flags.endpoints === DEFAULT_ENDPOINTS);
  const fetchFn = clientFetch(resolved.tls);
  const secretFile = flags.clusterSecretFile ?? env.QKV_CLUSTER_SECRET_FILE;
  const peer =
    secretFile === undefined || secretFile === ''
      ? PeerAuth.insecure('cli')
      : new PeerAuth({ id: 'cli', keys: loadSecretFile(secretFile).keys });
  const authorization = authorizationHeader(flags.auth);
  const timeoutMs = flags.timeoutMs === undefined ? 30_000 : Number(flags.timeoutMs);
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new SaveError(`--timeout-ms: expected a positive number, got "${flags.timeoutMs}"`);
  }
  const failures: string[] = [];
  for (const endpoint of resolved.endpoints) {
    let url = `${endpoint.replace(/\/+$/, '')}${SNAPSHOT_PATH}`;
    for (let hop = 0; hop < 4; hop++) {
      let res: Response;
      try {
        // A fresh signature for every request (each is accepted once).
        const headers: Record<string, string> = {
          ...peer.signHeaders('GET', SNAPSHOT_PATH),
          ...(authorization === undefined ? {} : { authorization }),
        };
        res = await fetchFn(url, {
          method: 'GET',
          headers,
          redirect: 'manual',
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        const cause = (err as { cause?: { message?: string } }).cause?.message;
        failures.push(`${url}: ${(err as Error).message}${cause === undefined ? '' : ` (${cause})`}`);
        break;
      }
      if (res.status === 307 || res.status === 308) {
        const location = res.headers.get('location');
        await res.arrayBuffer();
        if (location === null) {
          failures.push(`${url}: ${res.status} without a location`);
          break;
        }
        url = new URL(location, url).toString();
        continue;
      }
      const bytes = Buffer.from(await res.arrayBuffer());
      if (res.status === 200) return { bytes, from: url };
      const message = `${url}: HTTP ${res.status} ${errorOf(bytes.toString('utf8'))}`;
      // Credentials and permissions are the same on every node: say so at once.
      if (res.status === 401 || res.status === 403) {
        const peerRefusal = /peer credential/i.test(bytes.toString('utf8'));
        const hint = peerRefusal
          ? ' (the node wants a request signed with the cluster secret: --cluster-secret-file)'
          : ' (with auth on, saving needs a root credential: --user root[:PASSWORD] or --token)';
        throw new SaveError(message + hint);
      }
      failures.push(message);
      break;
    }
  }
  throw new SaveError(`no node gave a snapshot: ${failures.join('; ')}`);
}

function describe(b: DecodedBackup): string {
  const h = b.header;
  return (
    `${h.app} snapshot at index ${h.index} (term ${h.term}) from node ${h.node_id} of [${h.peers.join(',')}], ` +
    `taken ${h.created_at}, ${h.data_bytes} bytes of data, sha256 ${b.sha256}`
  );
}

/** Reads and checks a backup file: checksum, header and (key-value) the state machine's own decoding. */
export function readBackupFile(file: string): DecodedBackup {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new Error(`cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  const b = decodeBackup(bytes, file);
  if (b.header.app === 'kv') {
    try {
      new KvStateMachine().restore(b.data);
    } catch (err) {
      throw new Error(`${file}: the key-value snapshot inside does not decode: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  return b;
}

function parseIds(flags: { nodes?: string; ids?: string }, fallback: readonly number[]): number[] {
  if (flags.ids !== undefined && flags.nodes !== undefined) throw new Error('give --nodes or --ids, not both');
  if (flags.ids !== undefined) {
    const ids = flags.ids.split(',').map((s) => s.trim());
    if (ids.some((s) => !/^[1-9]\d{0,8}$/.test(s))) throw new Error(`--ids: expected "1,2,3", got "${flags.ids}"`);
    const nums = ids.map(Number);
    if (new Set(nums).size !== nums.length) throw new Error(`--ids: duplicate id in "${flags.ids}"`);
    return nums.sort((a, b) => a - b);
  }
  if (flags.nodes !== undefined) {
    if (!/^[1-9]\d{0,2}$/.test(flags.nodes))
      throw new Error(`--nodes: expected a positive integer, got "${flags.nodes}"`);
    return Array.from({ length: Number(flags.nodes) }, (_, i) => i + 1);
  }
  return [...fallback].sort((a, b) => a - b);
}

export function addSnapshotCommands(program: Command, io: SnapshotIO, withEndpoints: (cmd: Command) => Command): void {
  const snapshot = program
    .command('snapshot')
    .description('back up a raft cluster to a file and seed a new cluster from it (docs/deploy.md, "Backup")');

  withEndpoints(snapshot.command('save <file>'))
    .description(
      'save a consistent snapshot from the leader (at a linearizable read point) to FILE, with its index and a ' +
        'SHA-256 checksum; with auth on it needs a root credential, beyond loopback the cluster secret',
    )
    .option('--cluster-secret-file <file>', 'sign the request with the cluster secret; env QKV_CLUSTER_SECRET_FILE')
    .action(async (file: string, flags: SaveFlags) => {
      try {
        const { bytes, from } = await fetchBackup(flags, io.env);
        const b = decodeBackup(bytes, `the snapshot from ${from}`);
        writeFileDurably(file, bytes);
        io.out(`saved ${file}: ${describe(b)}`);
        io.exit(0);
      } catch (err) {
        io.err(`error: ${(err as Error).message}`);
        io.exit(1);
      }
    });

  snapshot
    .command('restore <file>')
    .description(
      'seed the data directories of a NEW cluster from FILE (checksum verified): every node starts from that ' +
        'state with a fresh log and term history; the directories must be empty or absent',
    )
    .option('--data <dir>', 'a `quorumkv cluster --data DIR` layout: writes DIR/node-<id> for every id')
    .option('--data-dir <dir>', "one node's data directory (quorumkv serve --data-dir; a pod's volume)")
    .option('--nodes <n>', 'the new cluster has node ids 1..n (default: the ids of the cluster saved)')
    .option('--ids <list>', 'the new cluster\'s node ids, e.g. "1,2,3" (instead of --nodes)')
    .action(async (file: string, flags: { data?: string; dataDir?: string; nodes?: string; ids?: string }) => {
      try {
        if ((flags.data === undefined) === (flags.dataDir === undefined)) {
          throw new Error('give --data DIR (a local cluster) or --data-dir DIR (one node), not both or neither');
        }
        const b = readBackupFile(file);
        const ids = parseIds(flags, b.header.peers);
        if (flags.data !== undefined && ids.some((id, i) => id !== i + 1)) {
          throw new Error(`--data makes a local cluster, whose ids are 1..n: use --nodes (or --data-dir per node)`);
        }
        const dirs =
          flags.data !== undefined
            ? ids.map((id) => path.resolve(flags.data as string, `node-${id}`))
            : [path.resolve(flags.dataDir as string)];
        for (const dir of dirs) await seedDataDir(dir, b, ids);
        io.out(`restored ${describe(b)}`);
        io.out(`  into ${dirs.join(', ')} (voters ${ids.join(',')}; log starts after index ${b.header.index}, term 1)`);
        if (flags.data !== undefined) {
          const app = b.header.app === 'chat' ? ' --app chat' : '';
          io.out(`  start it with: quorumkv cluster --data ${flags.data} --nodes ${ids.length}${app}`);
        } else {
          io.out(`  seed every other node's directory the same way (same FILE, same --ids), then start them`);
        }
        io.exit(0);
      } catch (err) {
        io.err(`error: ${(err as Error).message}`);
        io.exit(1);
      }
    });

  snapshot
    .command('status <file>')
    .description('check a snapshot file (checksum, header, contents) and print what it holds')
    .action((file: string) => {
      try {
        io.out(describe(readBackupFile(file)));
        io.exit(0);
      } catch (err) {
        io.err(`error: ${(err as Error).message}`);
        io.exit(1);
      }
    });
}
