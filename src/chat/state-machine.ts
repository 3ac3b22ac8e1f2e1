/**
 * The chat state machine: applies committed chat commands to an SQLite database kept in the node's data
 * directory. Deterministic: every check uses only the database and the command (its `time` is the
 * proposing leader's clock), so every replica gives the same result and holds the same rows.
 *
 * - One SQLite transaction per applied batch (the host calls `flush` after each batch), and the applied
 *   index is written in that same transaction: after a crash the database holds exactly the batches it
 *   committed, and the host replays the log from there. An entry at or below the recorded applied index is
 *   skipped, so nothing is applied twice, even when the Raft log replays entries the database already has.
 * - Snapshots are a consistent copy of the database (`VACUUM INTO`); restoring one swaps the file.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, fsyncSync, closeSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tmpdir } from 'node:os';
import type Database from 'better-sqlite3';
import type { HostStateMachine } from '../server/driver.js';
import {
  decodeChatCommand,
  InvalidChatCommandError,
  type ChatCommand,
  type ChatMessage,
  type ChatResult,
} from './commands.js';
import { Checkpointer } from './checkpointer.js';
import { appliedIndexOf, ChatTables, contentDigest, openDatabase, type RoomRecord } from './store.js';

export interface ChatListener {
  /** Messages committed by one applied batch, in commit order. */
  messages(batch: readonly ChatMessage[]): void;
  /** The whole state was replaced by a snapshot: re-read what you need. */
  reset(): void;
}

const NOT_AUTHENTICATED: ChatResult = { status: 401, body: { error: 'Not authenticated' } };
const NO_ROOM: ChatResult = { status: 404, body: { error: 'Room does not exist' } };
const ALREADY_APPLIED: ChatResult = { status: 200, body: { result: 'already applied' } };

export interface ChatStats {
  readonly applied: number;
  readonly users: number;
  readonly rooms: number;
  readonly messages: number;
  readonly sessions: number;
}

export class ChatStateMachine implements HostStateMachine<ChatResult, ChatCommand> {
  private db: Database.Database;
  private t: ChatTables;
  private appliedIndex: number;
  private inTx = false;
  private batch: ChatMessage[] = [];
  private readonly listeners = new Set<ChatListener>();
  /**
   * Planted bug (tests of the checker only): the database's applied index is ignored at start, so entries
   * it already holds are applied a second time when the log replays them after a restart.
   */
  private readonly replayUpTo: number;
  /** Runs the database's WAL checkpoints in a worker thread (nodes; not unit tests). */
  private readonly checkpointer: Checkpointer | undefined;
  private readonly forgetApplied: boolean;

  /** `file`: the database path, or `:memory:` (for a node whose Raft log is not durable either). */
  constructor(
    private readonly file: string,
    opts: { plantedBug?: 'reapply-after-restart'; backgroundCheckpoints?: boolean } = {},
  ) {
    const background = opts.backgroundCheckpoints === true && file !== ':memory:';
    this.db = openDatabase(file, { autoCheckpoint: !background });
    this.checkpointer = background ? new Checkpointer(file) : undefined;
    this.t = new ChatTables(this.db);
    this.forgetApplied = opts.plantedBug === 'reapply-after-restart';
    this.replayUpTo = this.forgetApplied ? this.t.applied() : 0;
    this.appliedIndex = this.forgetApplied ? 0 : this.t.applied();
  }

  /** The index of the last entry whose effects the database holds. */
  get applied(): number {
    return this.appliedIndex;
  }

  get tables(): ChatTables {
    return this.t;
  }

  subscribe(l: ChatListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  stats(): ChatStats {
    let messages = 0;
    for (const r of this.t.rooms.values()) messages += r.lastSeq;
    return {
      applied: this.appliedIndex,
      users: this.t.userCount(),
      rooms: this.t.rooms.size,
      messages,
      sessions: this.t.sessions.size,
    };
  }

  /** A digest of the replicated content (see contentDigest); flushes a pending batch first. */
  digest(): string {
    this.flush();
    return contentDigest(this.db);
  }

  /** The user a session belongs to, if it exists and has not expired at `now`. */
  sessionUser(session: string, now: number): string | undefined {
    const s = this.t.sessions.get(session);
    return s !== undefined && s.expires > now ? s.user : undefined;
  }

  room(name: string): RoomRecord | undefined {
    return this.t.rooms.get(name);
  }

  // ------------------------------------------------------------------------------------ HostStateMachine

  apply(index: number, data: Uint8Array, decoded?: ChatCommand): ChatResult {
    if (index <= this.appliedIndex) return ALREADY_APPLIED;
    this.begin();
    this.appliedIndex = index;
    let cmd: ChatCommand;
    try {
      cmd = decoded ?? decodeChatCommand(data);
    } catch (err) {
      if (err instanceof InvalidChatCommandError) return { status: 400, body: { error: err.message } };
      throw err;
    }
    return this.run(cmd);
  }

  skipTo(index: number): void {
    if (index <= this.appliedIndex) return;
    this.begin();
    this.appliedIndex = index;
  }

  flush(): void {
    if (!this.inTx) return;
    this.t.setApplied(this.appliedIndex);
    this.db.exec('COMMIT');
    this.inTx = false;
    const batch = this.batch;
    if (batch.length === 0) return;
    this.batch = [];
    for (const l of this.listeners) l.messages(batch);
  }

  snapshot(): Uint8Array {
    this.flush();
    const dir = this.file === ':memory:' ? tmpdir() : path.dirname(this.file);
    const tmp = path.join(dir, `chat-snapshot-${randomBytes(6).toString('hex')}.sqlite`);
    try {
      this.db.prepare('VACUUM INTO ?').run(tmp);
      return readFileSync(tmp);
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  restore(data: Uint8Array): void {
    this.flush();
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (this.file === ':memory:') {
      const next = openDatabase(bytes);
      const applied = new ChatTables(next).applied();
      if (applied <= this.appliedIndex) {
        next.close();
        return;
      }
      this.db.close();
      this.db = next;
    } else {
      const tmp = `${this.file}.restore`;
      writeFileSync(tmp, bytes);
      fsyncFile(tmp);
      // A database already ahead of the snapshot (it applied more before a restart) stays as it is.
      if (appliedIndexOf(tmp) <= this.appliedIndex) {
        rmSync(tmp, { force: true });
        return;
      }
      this.checkpointer?.pause();
      this.db.close();
      // The old database's write-ahead log must not be replayed into the new file.
      for (const suffix of ['-wal', '-shm']) rmSync(this.file + suffix, { force: true });
      renameSync(tmp, this.file);
      fsyncFile(path.dirname(this.file));
      this.db = openDatabase(this.file, { autoCheckpoint: this.checkpointer === undefined });
      this.checkpointer?.resume();
    }
    this.t = new ChatTables(this.db);
    this.appliedIndex = this.t.applied();
    for (const l of this.listeners) l.reset();
  }

  close(): void {
    if (this.inTx) this.flush();
    this.checkpointer?.stop();
    this.db.close();
  }

  // ------------------------------------------------------------------------------------------ commands

  private begin(): void {
    if (this.inTx) return;
    this.db.exec('BEGIN');
    this.inTx = true;
  }

  private run(cmd: ChatCommand): ChatResult {
    switch (cmd.t) {
      case 'register':
        if (this.t.userExists(cmd.user)) return { status: 409, body: { error: 'Username is taken' } };
        this.t.insertUser(cmd.user, cmd.salt, cmd.hash, cmd.time);
        return { status: 201, body: { result: 'created', username: cmd.user } };
      case 'login':
        if (!this.t.userExists(cmd.user)) return { status: 401, body: { error: 'Wrong username or password' } };
        this.t.insertSession(cmd.session, cmd.user, cmd.time, cmd.expires);
        return { status: 201, body: { username: cmd.user } };
      case 'logout':
        if (this.sessionUser(cmd.session, cmd.time) === undefined) return NOT_AUTHENTICATED;
        this.t.deleteSession(cmd.session);
        return { status: 200, body: { result: 'deleted' } };
      case 'create-room': {
        const user = this.sessionUser(cmd.session, cmd.time);
        if (user === undefined) return NOT_AUTHENTICATED;
        if (this.t.rooms.has(cmd.room)) return { status: 409, body: { error: 'Room exists' } };
        const room = this.t.insertRoom(cmd.room, user, cmd.time);
        this.t.addMember(room, user, cmd.time);
        return { status: 201, body: { result: 'created', name: cmd.room } };
      }
      case 'join': {
        const user = this.sessionUser(cmd.session, cmd.time);
        if (user === undefined) return NOT_AUTHENTICATED;
        const room = this.t.rooms.get(cmd.room);
        if (room === undefined) return NO_ROOM;
        this.t.addMember(room, user, cmd.time);
        return { status: 200, body: { result: 'joined' } };
      }
      case 'post':
        return this.post(cmd);
    }
  }

  private post(cmd: Extract<ChatCommand, { t: 'post' }>): ChatResult {
    const user = this.sessionUser(cmd.session, cmd.time);
    if (user === undefined) return NOT_AUTHENTICATED;
    const replayed = this.appliedIndex <= this.replayUpTo;
    if (cmd.rid !== undefined && !replayed) {
      // A retried post: its first outcome, whatever room it went to.
      const first = this.t.messageByRid(user, cmd.rid);
      if (first !== undefined) return { status: 201, body: messageBody(first) };
    }
    const room = this.t.rooms.get(cmd.room);
    if (room === undefined) return NO_ROOM;
    if (!room.members.has(user)) return { status: 403, body: { error: 'Not a member' } };
    const m: ChatMessage = { room: room.name, seq: room.lastSeq + 1, user, text: cmd.text, time: cmd.time };
    this.t.insertMessage(room, m, replayed ? undefined : cmd.rid);
    this.batch.push(m);
    return { status: 201, body: messageBody(m) };
  }
}

/** The contract's rendering of a message: `{"seq","room","user","text","time"}`. */
export function messageBody(m: ChatMessage): Record<string, unknown> {
  return { seq: m.seq, room: m.room, user: m.user, text: m.text, time: m.time };
}

function fsyncFile(p: string): void {
  if (!existsSync(p)) return;
  const fd = openSync(p, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
