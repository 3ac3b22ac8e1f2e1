import { RaftNode, type RaftConfig } from '../raft/node.js';
import { makeRng } from '../raft/rng.js';
import type { Entry, Message, NodeId, Ready } from '../raft/types.js';
import { MemoryStorage } from '../storage/memory.js';

/** A message as one line of text: `1->2 app t2 prev=3/1 [4@2 5@2] c3`. */
export function formatMessage(m: Message): string {
  const parts = [`${m.from}->${m.to} ${m.type} t${m.term}`];
  switch (m.type) {
    case 'app':
      parts.push(`prev=${m.index}/${m.logTerm}`, `[${(m.entries ?? []).map((e) => `${e.index}@${e.term}`).join(' ')}]`);
      parts.push(`c${m.commit}`);
      break;
    case 'app-resp':
      parts.push(m.reject ? `reject ${m.index} hint=${m.rejectHint ?? 0}/${m.logTerm}` : `ok ${m.index}`);
      break;
    case 'vote':
    case 'prevote':
      parts.push(`last=${m.index}/${m.logTerm}`);
      break;
    case 'vote-resp':
    case 'prevote-resp':
      parts.push(m.reject ? 'reject' : 'grant');
      break;
    case 'heartbeat':
      parts.push(`c${m.commit}`);
      if (m.context) parts.push(`read#${m.context}`);
      break;
    case 'heartbeat-resp':
      if (m.context) parts.push(`read#${m.context}`);
      break;
    case 'snap':
      parts.push(
        `snap=${m.index}/${m.logTerm} @${m.snapshot?.offset}+${m.snapshot?.data.byteLength}/${m.snapshot?.totalSize}`,
      );
      break;
    case 'snap-resp':
      parts.push(`${m.reject ? 'reject' : 'ack'} next=${m.rejectHint ?? 0}`);
      break;
    default:
      break;
  }
  return parts.join(' ');
}

interface HarnessNode {
  node: RaftNode;
  storage: MemoryStorage;
  /** Entries applied by this node, in order. */
  applied: Entry[];
  readStates: { index: number; ctx: string }[];
  down: boolean;
}

/**
 * A hand-driven cluster for scripted tests: every Ready is persisted at once, and messages wait in an
 * outbox until the test delivers (or drops) them, so a test can state the exact message sequence.
 */
export class ScriptedCluster {
  readonly nodes = new Map<NodeId, HarnessNode>();
  outbox: Message[] = [];
  readonly trace: string[] = [];
  private readonly cfg: Partial<RaftConfig>;

  constructor(
    readonly ids: readonly NodeId[],
    cfg: Partial<RaftConfig> = {},
  ) {
    this.cfg = cfg;
    for (const id of ids) {
      const storage = new MemoryStorage(ids);
      this.nodes.set(id, { node: this.makeNode(id, storage), storage, applied: [], readStates: [], down: false });
    }
  }

  private makeNode(id: NodeId, storage: MemoryStorage): RaftNode {
    return new RaftNode({ electionTick: 10, heartbeatTick: 1, ...this.cfg, id, storage, rng: makeRng(id * 7919) });
  }

  get(id: NodeId): RaftNode {
    return this.h(id).node;
  }

  h(id: NodeId): HarnessNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Runs every node's Ready loop until quiet; outgoing messages go to the outbox. */
  process(): void {
    for (let again = true; again;) {
      again = false;
      for (const n of this.nodes.values()) {
        if (n.down || !n.node.hasReady()) continue;
        again = true;
        this.handleReady(n, n.node.ready());
      }
    }
  }

  private handleReady(n: HarnessNode, rd: Ready): void {
    this.outbox.push(...rd.earlyMessages);
    n.storage.saveSync({ hardState: rd.hardState, entries: rd.entries, snapshot: rd.snapshot });
    this.outbox.push(...rd.messages);
    if (rd.snapshot) n.applied.length = 0;
    n.applied.push(...rd.committedEntries);
    n.readStates.push(...rd.readStates);
    n.node.advance(rd);
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) this.get(id).tick();
    this.process();
  }

  /** Ticks `id` until it starts a (pre-)campaign, i.e. sends vote or pre-vote requests. */
  campaign(id: NodeId): void {
    const asking = () => this.outbox.some((m) => m.from === id && (m.type === 'vote' || m.type === 'prevote'));
    for (let i = 0; i < 100 && !asking(); i++) this.tick(id);
  }

  /** Delivers the messages matching `filter` currently in the outbox (in order), dropping those matching `drop`. */
  deliver(filter: (m: Message) => boolean = () => true, drop: (m: Message) => boolean = () => false): Message[] {
    const now = this.outbox.filter(filter);
    this.outbox = this.outbox.filter((m) => !filter(m));
    for (const m of now) {
      const dst = this.nodes.get(m.to);
      if (!dst || dst.down || drop(m)) {
        this.trace.push(`${formatMessage(m)} (dropped)`);
        continue;
      }
      this.trace.push(formatMessage(m));
      dst.node.step(m);
    }
    this.process();
    return now;
  }

  /** Delivers messages round after round until the outbox is empty (or `maxRounds`). */
  settle(drop: (m: Message) => boolean = () => false, maxRounds = 100): void {
    for (let i = 0; i < maxRounds && this.outbox.length > 0; i++) this.deliver(() => true, drop);
  }

  /** Drops every message to or from `ids`. */
  isolate(ids: readonly NodeId[]): (m: Message) => boolean {
    return (m) => ids.includes(m.from) !== ids.includes(m.to);
  }

  crash(id: NodeId): void {
    const n = this.h(id);
    n.down = true;
    this.outbox = this.outbox.filter((m) => m.from !== id);
  }

  restart(id: NodeId): void {
    const n = this.h(id);
    n.down = false;
    n.node = this.makeNode(id, n.storage);
    n.applied = [];
    n.readStates = [];
    this.process();
  }

  leader(): NodeId | undefined {
    for (const [id, n] of this.nodes) if (!n.down && n.node.status().role === 'leader') return id;
    return undefined;
  }

  /** The `index@term` list of a node's log, for assertions. */
  logOf(id: NodeId): string {
    const n = this.get(id);
    const s = n.status();
    return n
      .logEntries(s.firstIndex, s.lastIndex + 1)
      .map((e) => `${e.index}@${e.term}`)
      .join(' ');
  }
}
