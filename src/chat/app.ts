/**
 * The chat service as a node's app: its state machine keeps the state in `<dataDir>/chat.sqlite` (in
 * memory when the node's Raft storage is in memory too: the two must share one history), its routes are
 * the contract's `/chat/...`, and each node streams rooms from its own applied state.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { startingApplied, type RaftApp } from '../server/app.js';
import type { ChatCommand, ChatResult } from './commands.js';
import { DEFAULT_CHAT_LIMITS, registerChatRoutes } from './routes.js';
import { ChatStateMachine } from './state-machine.js';
import { StreamHub } from './stream.js';

export const CHAT_DB_FILE = 'chat.sqlite';

export const chatApp: RaftApp<ChatResult, ChatCommand> = {
  name: 'chat',
  bodyLimit: () => 64 * 1024,
  tooLarge: (url) => (/\/messages(\?|$)/.test(url) ? 'Message is too long' : 'Request body is too large'),
  open(cfg, storage) {
    let file = ':memory:';
    if (cfg.storage !== 'memory') {
      mkdirSync(cfg.dataDir, { recursive: true });
      file = path.join(cfg.dataDir, CHAT_DB_FILE);
    }
    const sm = new ChatStateMachine(file, {
      backgroundCheckpoints: true,
      ...(cfg.chatPlantedBug === undefined ? {} : { plantedBug: cfg.chatPlantedBug }),
    });
    const snap = storage.snapshot();
    // A database behind the snapshot (lost with the disk's cache, or never written) starts from it.
    if (snap.metadata.index > sm.applied) sm.restore(snap.data);
    const hub = new StreamHub(sm);
    const limits = {
      ...DEFAULT_CHAT_LIMITS,
      ...(cfg.chatLoginsPerMinute === undefined ? {} : { loginsPerMinute: cfg.chatLoginsPerMinute }),
      ...(cfg.chatSessionTtlMs === undefined ? {} : { sessionTtlMs: cfg.chatSessionTtlMs }),
    };
    return {
      sm,
      applied: startingApplied(sm.applied, storage),
      routes(app, ctx) {
        registerChatRoutes(app, { ...ctx, sm, hub, limits });
      },
      status: () => ({ chat: { ...sm.stats(), streams: hub.subscribers, delivered: hub.delivered } }),
      close() {
        hub.close();
        sm.close();
      },
    };
  },
};
