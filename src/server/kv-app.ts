/** The key-value store as a node's app: the in-memory KV state machine and the `/kvs`, `/txn` routes. */
import type { LogCommand } from '../kv/commands.js';
import { DEFAULT_PARSE_LIMITS } from '../kv/parse.js';
import type { ApplyResult } from '../kv/results.js';
import { KvStateMachine } from '../kv/state-machine.js';
import { WatchHistory } from '../kv/watch.js';
import type { RaftApp } from './app.js';
import { registerKvRoutes } from './routes.js';
import { WatchHub } from './watch.js';
import { AuthGate } from './kv-auth.js';
import type { RaftHost } from './driver.js';

export const kvApp: RaftApp<ApplyResult, LogCommand> = {
  name: 'kv',
  open(cfg, storage) {
    const kv = new KvStateMachine();
    const snap = storage.snapshot();
    if (snap.metadata.index > 0) kv.restore(snap.data);
    // The log replay re-applies every entry after the snapshot: the history starts there.
    const history = new WatchHistory(snap.metadata.index, {
      maxChanges: cfg.watchHistory,
      maxBytes: cfg.watchHistoryBytes,
    });
    kv.observe(history);
    const hub = new WatchHub(history, kv);
    let gate: AuthGate | undefined;
    let host: RaftHost<ApplyResult, LogCommand> | undefined;
    return {
      sm: kv,
      applied: snap.metadata.index,
      routes(app, ctx) {
        const parseLimits = { ...DEFAULT_PARSE_LIMITS, ...ctx.limits };
        registerKvRoutes(app, { ...ctx, kv, parseLimits, watch: { history, hub } });
        gate = new AuthGate(kv, ctx.host, { trustForwardedUser: false });
        host = ctx.host;
      },
      async checkAdmin(req) {
        // With auth on, the dashboard's node controls are root's, like /admin/*. A follower that has not
        // applied what it knows committed (auth turned on a moment ago) catches up before it decides.
        if (gate?.enabled !== true && host !== undefined) {
          await host.waitApplied(host.commitIndex(), 1000).catch(() => undefined);
        }
        if (gate?.enabled !== true) return false;
        await gate.check(req, (auth, user) => auth.isRoot(user));
        return true;
      },
      status: () => ({
        keys: kv.size,
        sessions: kv.sessionCount,
        auth_enabled: kv.auth.enabled,
        watch: { watchers: hub.watchers, compact_revision: history.compactRevision, changes: history.length },
      }),
      close() {
        hub.close();
      },
    };
  },
};
