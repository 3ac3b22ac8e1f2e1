/** The key-value store as a node's app: the in-memory KV state machine and the `/kvs`, `/txn` routes. */
import type { LogCommand } from '../kv/commands.js';
import { DEFAULT_PARSE_LIMITS } from '../kv/parse.js';
import type { ApplyResult } from '../kv/results.js';
import { KvStateMachine } from '../kv/state-machine.js';
import type { RaftApp } from './app.js';
import { registerKvRoutes } from './routes.js';

export const kvApp: RaftApp<ApplyResult, LogCommand> = {
  name: 'kv',
  open(_cfg, storage) {
    const kv = new KvStateMachine();
    const snap = storage.snapshot();
    if (snap.metadata.index > 0) kv.restore(snap.data);
    return {
      sm: kv,
      applied: snap.metadata.index,
      routes(app, ctx) {
        registerKvRoutes(app, { ...ctx, kv, parseLimits: { ...DEFAULT_PARSE_LIMITS, ...ctx.limits } });
      },
      status: () => ({ keys: kv.size, sessions: kv.sessionCount, auth_enabled: kv.auth.enabled }),
      close() {},
    };
  },
};
