/**
 * The chat state in SQLite (better-sqlite3): schema, prepared statements and the in-memory indexes that
 * the hot paths read (sessions, rooms and their members). Only parameterised statements: no SQL text is
 * ever built from input.
 */
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import type { ChatMessage } from './commands.js';

const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS users (
  name TEXT PRIMARY KEY, salt BLOB NOT NULL, hash BLOB NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY, user TEXT NOT NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user);
CREATE TABLE IF NOT EXISTS rooms (
  name TEXT PRIMARY KEY, creator TEXT NOT NULL, created INTEGER NOT NULL, last_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS members (
  room TEXT NOT NULL, user TEXT NOT NULL, joined INTEGER NOT NULL, PRIMARY KEY (room, user)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
  room TEXT NOT NULL, seq INTEGER NOT NULL, user TEXT NOT NULL, text TEXT NOT NULL, time INTEGER NOT NULL,
  rid TEXT, PRIMARY KEY (room, seq)) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS messages_rid ON messages (user, rid) WHERE rid IS NOT NULL;
`;

export interface SessionRecord {
  readonly user: string;
  readonly expires: number;
}

export interface RoomRecord {
  readonly name: string;
  lastSeq: number;
  readonly members: Set<string>;
}

export interface UserSecret {
  readonly salt: Buffer;
  readonly hash: Buffer;
}

/** Opens (creating if needed) a chat database: a file path, or `:memory:`, or the bytes of a database. */
export function openDatabase(source: string | Buffer, opts: { autoCheckpoint?: boolean } = {}): Database.Database {
  const db = new Database(source);
  if (typeof source === 'string' && source !== ':memory:') {
    db.pragma('journal_mode = WAL');
    // Checkpoints run in a worker thread (checkpointer.ts) when the owner asks for it.
    if (opts.autoCheckpoint === false) db.pragma('wal_autocheckpoint = 0');
    // The Raft log is the durable record; the database may lose its last transactions in a power cut and
    // then replays them from the log (its applied index is in the same transactions).
    db.pragma('synchronous = NORMAL');
  }
  db.exec(SCHEMA);
  db.prepare('INSERT OR IGNORE INTO meta (k, v) VALUES (?, ?)').run('schema', SCHEMA_VERSION);
  db.prepare('INSERT OR IGNORE INTO meta (k, v) VALUES (?, ?)').run('applied', 0);
  const schema = db.prepare('SELECT v FROM meta WHERE k = ?').pluck().get('schema');
  if (schema !== SCHEMA_VERSION) {
    db.close();
    throw new Error(`chat database schema ${String(schema)} is not supported (expected ${SCHEMA_VERSION})`);
  }
  return db;
}

/** Reads the applied index recorded in a database file without keeping it open. */
export function appliedIndexOf(file: string): number {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const v = db.prepare('SELECT v FROM meta WHERE k = ?').pluck().get('applied');
    return typeof v === 'number' ? v : 0;
  } finally {
    db.close();
  }
}

/** Every replicated table in primary-key order: what must be identical on every caught-up node. */
const CONTENT_QUERIES = [
  'SELECT name, salt, hash, created FROM users ORDER BY name',
  'SELECT id, user, created, expires FROM sessions ORDER BY id',
  'SELECT name, creator, created, last_seq FROM rooms ORDER BY name',
  'SELECT room, user, joined FROM members ORDER BY room, user',
  'SELECT room, seq, user, text, time, rid FROM messages ORDER BY room, seq',
];

/**
 * A SHA-256 digest of the database's replicated content (not its bytes, nor its applied index): two nodes
 * that applied the same entries give the same digest.
 */
export function contentDigest(db: Database.Database): string {
  const h = createHash('sha256');
  for (const q of CONTENT_QUERIES) {
    h.update(q);
    for (const row of db.prepare(q).raw().iterate() as Iterable<unknown[]>) {
      h.update(JSON.stringify(row.map((v) => (Buffer.isBuffer(v) ? v.toString('hex') : v))));
      h.update('\n');
    }
  }
  return h.digest('hex');
}

/** The content digest of a database file (opened read-only; the owning node may be running). */
export function contentDigestOfFile(file: string): string {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return contentDigest(db);
  } finally {
    db.close();
  }
}

/** The prepared statements and in-memory indexes over one open database. */
export class ChatTables {
  readonly sessions = new Map<string, SessionRecord>();
  readonly rooms = new Map<string, RoomRecord>();
  private readonly s;

  constructor(readonly db: Database.Database) {
    this.s = {
      getApplied: db.prepare('SELECT v FROM meta WHERE k = ?').pluck(),
      setApplied: db.prepare("UPDATE meta SET v = ? WHERE k = 'applied'"),
      userSecret: db.prepare('SELECT salt, hash FROM users WHERE name = ?'),
      userExists: db.prepare('SELECT 1 FROM users WHERE name = ?').pluck(),
      insertUser: db.prepare('INSERT INTO users (name, salt, hash, created) VALUES (?, ?, ?, ?)'),
      countUsers: db.prepare('SELECT count(*) FROM users').pluck(),
      insertSession: db.prepare('INSERT OR REPLACE INTO sessions (id, user, created, expires) VALUES (?, ?, ?, ?)'),
      expiredSessions: db.prepare('SELECT id FROM sessions WHERE user = ? AND expires <= ?').pluck(),
      deleteSession: db.prepare('DELETE FROM sessions WHERE id = ?'),
      allSessions: db.prepare('SELECT id, user, expires FROM sessions'),
      insertRoom: db.prepare('INSERT INTO rooms (name, creator, created, last_seq) VALUES (?, ?, ?, 0)'),
      setLastSeq: db.prepare('UPDATE rooms SET last_seq = ? WHERE name = ?'),
      allRooms: db.prepare('SELECT name, last_seq FROM rooms'),
      insertMember: db.prepare('INSERT OR IGNORE INTO members (room, user, joined) VALUES (?, ?, ?)'),
      allMembers: db.prepare('SELECT room, user FROM members'),
      insertMessage: db.prepare('INSERT INTO messages (room, seq, user, text, time, rid) VALUES (?, ?, ?, ?, ?, ?)'),
      messageByRid: db.prepare('SELECT room, seq, user, text, time FROM messages WHERE user = ? AND rid = ?'),
      messagesAfter: db.prepare(
        'SELECT room, seq, user, text, time FROM messages WHERE room = ? AND seq > ? ORDER BY seq LIMIT ?',
      ),
    };
    this.load();
  }

  /** Rebuilds the in-memory indexes from the database. */
  private load(): void {
    this.sessions.clear();
    this.rooms.clear();
    for (const r of this.s.allSessions.all() as { id: string; user: string; expires: number }[]) {
      this.sessions.set(r.id, { user: r.user, expires: r.expires });
    }
    for (const r of this.s.allRooms.all() as { name: string; last_seq: number }[]) {
      this.rooms.set(r.name, { name: r.name, lastSeq: r.last_seq, members: new Set() });
    }
    for (const m of this.s.allMembers.all() as { room: string; user: string }[]) {
      this.rooms.get(m.room)?.members.add(m.user);
    }
  }

  applied(): number {
    const v = this.s.getApplied.get('applied');
    return typeof v === 'number' ? v : 0;
  }

  setApplied(index: number): void {
    this.s.setApplied.run(index);
  }

  userExists(name: string): boolean {
    return this.s.userExists.get(name) !== undefined;
  }

  userSecret(name: string): UserSecret | undefined {
    return this.s.userSecret.get(name) as UserSecret | undefined;
  }

  userCount(): number {
    return this.s.countUsers.get() as number;
  }

  insertUser(name: string, salt: Uint8Array, hash: Uint8Array, time: number): void {
    this.s.insertUser.run(name, Buffer.from(salt), Buffer.from(hash), time);
  }

  insertSession(id: string, user: string, created: number, expires: number): void {
    // A user's expired sessions go when the user logs in again: the table does not grow without bound.
    for (const old of this.s.expiredSessions.all(user, created) as string[]) this.deleteSession(old);
    this.s.insertSession.run(id, user, created, expires);
    this.sessions.set(id, { user, expires });
  }

  deleteSession(id: string): void {
    this.s.deleteSession.run(id);
    this.sessions.delete(id);
  }

  insertRoom(name: string, creator: string, time: number): RoomRecord {
    this.s.insertRoom.run(name, creator, time);
    const room: RoomRecord = { name, lastSeq: 0, members: new Set() };
    this.rooms.set(name, room);
    return room;
  }

  addMember(room: RoomRecord, user: string, time: number): void {
    if (room.members.has(user)) return;
    this.s.insertMember.run(room.name, user, time);
    room.members.add(user);
  }

  insertMessage(room: RoomRecord, m: ChatMessage, rid: string | undefined): void {
    this.s.insertMessage.run(room.name, m.seq, m.user, m.text, m.time, rid ?? null);
    this.s.setLastSeq.run(m.seq, room.name);
    room.lastSeq = m.seq;
  }

  messageByRid(user: string, rid: string): ChatMessage | undefined {
    return this.s.messageByRid.get(user, rid) as ChatMessage | undefined;
  }

  messagesAfter(room: string, after: number, limit: number): ChatMessage[] {
    return this.s.messagesAfter.all(room, after, limit) as ChatMessage[];
  }
}
