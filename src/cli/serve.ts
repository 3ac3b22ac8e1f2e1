/**
 * `quorumkv serve`: starts one raft node and stops it cleanly on SIGINT / SIGTERM. The other modes run
 * their own node programs (see modes.ts), so only raft has an in-process starter here.
 */
import type { Mode, NodeConfig, ServeConfig } from './config.js';

export interface RunningNode {
  readonly url: string;
  close(): Promise<void>;
}

type Starter = (config: NodeConfig) => Promise<RunningNode>;

/** The raft server module, loaded at run time (it is built by the server side of the project). */
const RAFT_SERVER_MODULE = '../server/node.js';

async function startRaft(config: NodeConfig): Promise<RunningNode> {
  let mod: { startRaftNode?: unknown };
  try {
    mod = (await import(RAFT_SERVER_MODULE)) as { startRaftNode?: unknown };
  } catch (err) {
    throw new Error(`the raft server is not available in this build: ${(err as Error).message}`, { cause: err });
  }
  if (typeof mod.startRaftNode !== 'function') throw new Error('src/server/node.js does not export startRaftNode');
  return (mod.startRaftNode as Starter)(config);
}

export const STARTERS: Readonly<Record<Mode, Starter | undefined>> = {
  raft: startRaft,
  quorum: undefined,
  causal: undefined,
  eventual: undefined,
};

export interface ServeIO {
  out(line: string): void;
  err(line: string): void;
}

/** Starts the node and resolves once it has been stopped by a signal. */
export async function runServe(cfg: ServeConfig, io: ServeIO): Promise<void> {
  const start = STARTERS[cfg.mode];
  if (start === undefined) throw new Error(`mode "${cfg.mode}" is not implemented yet (available: raft)`);
  const node = await start(cfg.node);
  const what = cfg.node.app === 'chat' ? `${cfg.mode}, chat app` : cfg.mode;
  io.out(`quorumkv node ${cfg.node.id} (${what}) serving on ${node.url}, data in ${cfg.node.dataDir}`);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (sig: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      io.out(`node ${cfg.node.id}: ${sig}, stopping`);
      node.close().then(
        () => resolve(),
        (err: unknown) => {
          io.err(`node ${cfg.node.id}: error while stopping: ${(err as Error).message}`);
          process.exitCode = 1;
          resolve();
        },
      );
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
