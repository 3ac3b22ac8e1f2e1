/** The data commands of the CLI: put, get, del, list, status. Each prints to `out` and returns an exit code. */
import { Client } from '../client/client.js';
import { KvError, UnavailableError } from '../client/errors.js';
import { resolveClientTls, type ClientTlsFlags } from './client-tls.js';
import type { ClientAuth, Consistency, JsonValue, NodeStatus } from '../client/types.js';

export const DEFAULT_ENDPOINTS = 'http://127.0.0.1:8081,http://127.0.0.1:8082,http://127.0.0.1:8083';

export interface KvIO {
  out(line: string): void;
  err(line: string): void;
}

export interface CommonFlags extends ClientTlsFlags {
  endpoints: string;
  timeoutMs?: string;
  /** `--user NAME[:PASSWORD]` and `--token T` as given; `auth` is what they resolve to (auth-commands.ts). */
  user?: string;
  token?: string;
  auth?: ClientAuth;
}

/** A CLI value: JSON if it parses as JSON, otherwise the string itself. */
export function parseValue(s: string): JsonValue {
  try {
    return JSON.parse(s) as JsonValue;
  } catch {
    return s;
  }
}

export function makeClient(flags: CommonFlags): Client {
  const endpoints = flags.endpoints
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e.length > 0);
  const timeoutMs = flags.timeoutMs === undefined ? undefined : Number(flags.timeoutMs);
  if (timeoutMs !== undefined && (!Number.isFinite(timeoutMs) || timeoutMs <= 0)) {
    throw new TypeError(`--timeout-ms: expected a positive number, got "${flags.timeoutMs}"`);
  }
  const resolved = resolveClientTls(endpoints, flags, flags.endpoints === DEFAULT_ENDPOINTS);
  return new Client({
    endpoints: resolved.endpoints,
    ...resolved.tls,
    ...(timeoutMs === undefined ? {} : { timeoutMs, deadlineMs: Math.max(timeoutMs * 3, 5000) }),
    ...(flags.auth === undefined ? {} : { auth: flags.auth }),
  });
}

/** Runs a client call, mapping errors to a message on stderr and exit code 1. */
export async function guarded(io: KvIO, fn: () => Promise<void>): Promise<number> {
  try {
    await fn();
    return 0;
  } catch (err) {
    if (err instanceof UnavailableError && err.everyNode !== undefined) {
      // The nodes said why they cannot serve: say that, not "timed out".
      const n = err.everyNode;
      const from =
        n.unreachable === 0
          ? 'from every node'
          : `from ${n.answered} node${n.answered === 1 ? '' : 's'}, ${n.unreachable} unreachable`;
      io.err(`error: ${n.error} (HTTP 503 ${from})`);
    } else if (err instanceof KvError) {
      io.err(`error: ${err.message}${err.status > 0 ? ` (HTTP ${err.status})` : ''}`);
    } else io.err(`error: ${(err as Error).message}`);
    return 1;
  }
}

export const kvCommands = {
  async put(io: KvIO, flags: CommonFlags, key: string, value: string): Promise<number> {
    return guarded(io, async () => {
      const r = await makeClient(flags).put(key, parseValue(value));
      io.out(JSON.stringify({ result: r.result, revision: r.revision, version: r.version, leader: r.leader }));
    });
  },

  async get(io: KvIO, flags: CommonFlags & { consistency?: string; meta?: boolean }, key: string): Promise<number> {
    return guarded(io, async () => {
      const c = flags.consistency;
      if (c !== undefined && c !== 'linearizable' && c !== 'lease' && c !== 'stale') {
        throw new TypeError(`--consistency: expected linearizable, lease or stale, got "${c}"`);
      }
      const r = await makeClient(flags).get(key, c === undefined ? {} : { consistency: c as Consistency });
      if (flags.meta === true) {
        const { endpoint: _e, ...rest } = r;
        io.out(JSON.stringify(rest));
      } else io.out(JSON.stringify(r.value));
    });
  },

  async del(io: KvIO, flags: CommonFlags, key: string): Promise<number> {
    return guarded(io, async () => {
      const r = await makeClient(flags).delete(key);
      io.out(JSON.stringify({ result: r.result, revision: r.revision, leader: r.leader }));
    });
  },

  async list(
    io: KvIO,
    flags: CommonFlags & { limit?: string; after?: string },
    prefix: string | undefined,
  ): Promise<number> {
    return guarded(io, async () => {
      const limit = flags.limit === undefined ? undefined : Number(flags.limit);
      if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
        throw new TypeError(`--limit: expected a non-negative integer, got "${flags.limit}"`);
      }
      const r = await makeClient(flags).list(
        prefix ?? '',
        limit,
        flags.after === undefined ? {} : { after: flags.after },
      );
      for (const it of r.items) io.out(it.value === undefined ? it.key : `${it.key}\t${JSON.stringify(it.value)}`);
      const last = r.items[r.items.length - 1];
      if (r.more && last !== undefined) io.err(`more keys follow: --after ${JSON.stringify(last.key)}`);
    });
  },

  async status(io: KvIO, flags: CommonFlags): Promise<number> {
    return guarded(io, async () => {
      const st = await makeClient(flags).status();
      for (const line of statusTable(st)) io.out(line);
      if (!st.some((n) => n.ok)) throw new Error('no node answered');
    });
  },
};

const COLUMNS = ['id', 'url', 'role', 'term', 'commit', 'applied', 'leader', 'health'] as const;

function cell(v: JsonValue | undefined): string {
  if (v === undefined || v === null) return '-';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** A text table of every node's status; unreachable nodes are shown as down. */
export function statusTable(nodes: readonly NodeStatus[]): string[] {
  const rows = nodes.map((n): string[] => {
    if (!n.ok) return ['-', n.endpoint, '-', '-', '-', '-', '-', `down (${n.error})`];
    const s = n.status;
    // The raft server reports `state` (serving, failed, catching up...); other nodes may only answer.
    let health =
      typeof s.health === 'string'
        ? s.health
        : typeof s.state === 'string'
          ? s.state
          : s.failed === true
            ? 'failed'
            : 'up';
    // A serving node that is cut off from a majority cannot answer linearizable requests.
    if (s.quorum === false && (health === 'serving' || health === 'up')) health = 'no quorum';
    return [
      cell(s.id ?? s.node_id),
      n.endpoint,
      cell(s.role),
      cell(s.term),
      cell(s.commit),
      cell(s.applied),
      cell(s.leader),
      health,
    ];
  });
  const all = [[...COLUMNS] as string[], ...rows];
  const widths = COLUMNS.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd(),
  );
}
