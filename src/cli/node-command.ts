/**
 * `quorumkv node stop|start|restart|pause|resume N [--data DIR] [--mode M]`: asks the running local supervisor
 * (found through `<data>/supervisor.json`, `<data>/supervisor-<mode>.json` for the other modes).
 */
import { controlNode, NODE_ACTIONS, type NodeAction } from './supervisor.js';

export interface NodeCommandIO {
  out(line: string): void;
  err(line: string): void;
}

/** Returns the exit code: 0 done, 1 refused or no supervisor, 2 bad arguments. */
export async function runNodeCommand(
  io: NodeCommandIO,
  action: string,
  id: string,
  data: string,
  mode = 'raft',
): Promise<number> {
  if (!NODE_ACTIONS.includes(action as NodeAction)) {
    io.err(`error: unknown action "${action}" (expected ${NODE_ACTIONS.join(', ')})`);
    return 2;
  }
  if (!/^\d+$/.test(id) || Number(id) < 1) {
    io.err(`error: node id: expected a positive integer, got "${id}"`);
    return 2;
  }
  try {
    io.out(await controlNode(data, action as NodeAction, Number(id), mode));
    return 0;
  } catch (err) {
    io.err(`error: ${(err as Error).message}`);
    return 1;
  }
}
