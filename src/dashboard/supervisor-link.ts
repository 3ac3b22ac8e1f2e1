/**
 * How a node's dashboard reaches the local supervisor that runs its cluster (`quorumkv cluster`, any mode):
 * the supervisor starts its nodes with QKV_SUPERVISOR_FILE naming its `supervisor.json` (loopback control
 * URL, token, each node's id, URL, pid and state; src/cli/supervisor.ts). A node not started by a supervisor
 * has no such variable: the dashboard then shows no process buttons.
 */
import { readFileSync } from 'node:fs';
import { HttpError } from '../server/http-common.js';

export const SUPERVISOR_ENV = 'QKV_SUPERVISOR_FILE';

export interface SupervisorNodeView {
  readonly id: number;
  readonly pid: number | null;
  readonly state: string;
}

interface SupervisorFile {
  readonly control: string;
  readonly token: string;
  readonly nodes: readonly { id: number; pid: number | null; state: string; url: string }[];
}

function origin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}

function readFile(): SupervisorFile | undefined {
  const file = process.env[SUPERVISOR_ENV];
  if (file === undefined || file === '') return undefined;
  try {
    const info = JSON.parse(readFileSync(file, 'utf8')) as SupervisorFile;
    if (typeof info.control !== 'string' || typeof info.token !== 'string' || !Array.isArray(info.nodes)) {
      return undefined;
    }
    return info;
  } catch {
    return undefined;
  }
}

/** The supervised nodes by URL origin, or undefined without a supervisor. */
export function supervisorNodes(): Map<string, SupervisorNodeView> | undefined {
  const info = readFile();
  if (info === undefined) return undefined;
  return new Map(info.nodes.map((n) => [origin(n.url), { id: n.id, pid: n.pid, state: n.state }]));
}

/** Asks the supervisor to `action` the node at `url`; resolves to its answer line. */
export async function supervisorAction(action: string, url: string): Promise<string> {
  const info = readFile();
  if (info === undefined) {
    throw new HttpError(409, 'No local supervisor runs this cluster (start it with `quorumkv cluster`)');
  }
  const node = info.nodes.find((n) => origin(n.url) === url);
  if (node === undefined) throw new HttpError(404, `The supervisor runs no node at ${url}`);
  const res = await fetch(`${info.control}/nodes/${node.id}/${action}`, {
    method: 'POST',
    headers: { 'x-qkv-token': info.token },
    signal: AbortSignal.timeout(20_000),
  });
  const body = (await res.json()) as { result?: string; error?: string };
  if (res.status !== 200) throw new HttpError(409, body.error ?? `supervisor: HTTP ${res.status}`);
  return body.result ?? 'ok';
}
