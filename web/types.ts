/** The summary a node pushes once per second on `/ui/events` (src/dashboard/server.ts). */
export interface SecondSample {
  readonly t: number;
  readonly ops: number;
  readonly p50: number | null;
  readonly p99: number | null;
}

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Obj = { readonly [k: string]: Json | undefined };

export interface NodeSummary {
  readonly url: string;
  readonly ok: boolean;
  readonly error?: string;
  readonly mode?: string;
  readonly status?: Obj;
  readonly ops?: readonly SecondSample[];
  readonly extra?: Obj;
  readonly supervisor?: { readonly id: number; readonly pid: number | null; readonly state: string };
}

export interface Convergence {
  readonly count: number;
  readonly compared: number;
  readonly keys: readonly { readonly key: string; readonly values: Readonly<Record<string, string | null>> }[];
}

export interface Summary {
  readonly time: number;
  readonly mode: 'raft' | 'quorum' | 'causal' | 'eventual';
  readonly app: string;
  readonly self: string;
  readonly supervised: boolean;
  readonly nodes: readonly NodeSummary[];
  readonly convergence?: Convergence;
}

export const num = (v: Json | undefined): number | undefined => (typeof v === 'number' ? v : undefined);
export const str = (v: Json | undefined): string | undefined => (typeof v === 'string' ? v : undefined);
export const arr = (v: Json | undefined): Json[] => (Array.isArray(v) ? v : []);
export const obj = (v: Json | undefined): Obj =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {};

/** A node's short name: raft id, quorum/eventual node id, causal address. */
export function nodeName(n: NodeSummary): string {
  const s = n.status ?? {};
  const id = s.id ?? s.node_id;
  if (typeof id === 'number') return `node ${id}`;
  if (typeof id === 'string') return id;
  return n.url.replace(/^https?:\/\//, '');
}

/** The role the node reports (leader, follower, candidate, replica…), or "down". */
export function roleOf(n: NodeSummary): string {
  if (!n.ok) return 'down';
  return str(n.status?.role) ?? 'unknown';
}
