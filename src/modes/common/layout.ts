/** Default local cluster layouts for the quorum and eventual modes (used by `quorumkv cluster --mode ...`). */

export interface NodeAddress {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  readonly url: string;
}

function address(id: string, host: string, port: number): NodeAddress {
  return { id, host, port, url: `http://${host}:${port}` };
}

export interface QuorumLayout {
  readonly leader: NodeAddress;
  readonly followers: readonly NodeAddress[];
}

/** Quorum mode: the leader on `basePort` (8000) and `followers` (5) followers on the next ports (8001–8005). */
export function quorumClusterLayout(opts: { basePort?: number; followers?: number; host?: string } = {}): QuorumLayout {
  const host = opts.host ?? '127.0.0.1';
  const base = opts.basePort ?? 8000;
  const n = opts.followers ?? 5;
  return {
    leader: address('leader', host, base),
    followers: Array.from({ length: n }, (_, i) => address(`follower${i + 1}`, host, base + 1 + i)),
  };
}

export interface EventualReplica extends NodeAddress {
  /** URLs of the other replicas. */
  readonly peers: readonly string[];
}

/** Eventual mode: `replicas` (3) replicas r1..rn on consecutive ports from `basePort` (8100–8102). */
export function eventualClusterLayout(
  opts: { basePort?: number; replicas?: number; host?: string } = {},
): EventualReplica[] {
  const host = opts.host ?? '127.0.0.1';
  const base = opts.basePort ?? 8100;
  const n = opts.replicas ?? 3;
  const all = Array.from({ length: n }, (_, i) => address(`r${i + 1}`, host, base + i));
  return all.map((a) => ({ ...a, peers: all.filter((b) => b.id !== a.id).map((b) => b.url) }));
}

/** Parses a comma-separated list of peer addresses (`host:port` or full URLs) into base URLs. */
export function parseUrlList(list: string | undefined): string[] {
  if (list === undefined || list.trim() === '') return [];
  return list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(normalizeUrl);
}

export function normalizeUrl(s: string): string {
  const withScheme = /^https?:\/\//.test(s) ? s : `http://${s}`;
  return withScheme.replace(/\/+$/, '');
}
