/**
 * The replicated key-value state machine every Raft node applies committed entries to. It is
 * deterministic: no clocks, no randomness, no dependence on Map insertion history that a snapshot would
 * not reproduce. Replicas applying the same entries reach identical state, results and snapshot bytes.
 */
import { pack, unpack } from '../util/msgpack.js';
import { AuthState } from './auth.js';
import {
  decodeCommand,
  InvalidCommandError,
  type AsUserCommand,
  type Command,
  type Compare,
  type LogCommand,
  type TxnOp,
  type WriteConditions,
} from './commands.js';
import { jsonEqual, type JsonValue } from './json.js';
import type { ApplyResult, KeyRecord, TxnOpResult, WriteResult } from './results.js';
import { KvSnapshotJob, recordFields, type SnapshotJob } from './snapshot-job.js';
import { SortedKeys } from './sorted-keys.js';
import type { KvObserver } from './watch.js';
import { DEFAULT_SESSION_LIMITS, SessionTable, type SessionLimits, type SessionSnapshot } from './sessions.js';

export type { ApplyResult, KeyRecord, TxnOpResult, WriteResult } from './results.js';

/** Format 2 adds the auth state; format 1 (no auth state: auth disabled, no users) is still read. */
const SNAPSHOT_FORMAT = 2;
const SNAPSHOT_FORMAT_V1 = 1;

function conditionsHold(cur: KeyRecord | undefined, c: WriteConditions): boolean {
  if (c.ifVersion !== undefined) {
    if (c.ifVersion === 0 ? cur !== undefined : cur === undefined || cur.version !== c.ifVersion) return false;
  }
  if (c.hasIfValue === true || c.ifValue !== undefined) {
    if (cur === undefined || !jsonEqual(cur.value, c.ifValue ?? null)) return false;
  }
  return true;
}

function compareOrdered(a: JsonValue, op: '<' | '>', b: JsonValue): boolean {
  if (typeof a === 'number' && typeof b === 'number') return op === '<' ? a < b : a > b;
  if (typeof a === 'string' && typeof b === 'string') return op === '<' ? a < b : a > b;
  return false;
}

function compareHolds(cur: KeyRecord | undefined, c: Compare): boolean {
  if (c.target === 'value') {
    if (cur === undefined) return c.op === '!=';
    if (c.op === '==') return jsonEqual(cur.value, c.value);
    if (c.op === '!=') return !jsonEqual(cur.value, c.value);
    return compareOrdered(cur.value, c.op, c.value);
  }
  let actual: JsonValue;
  if (c.target === 'exists') actual = cur !== undefined;
  else if (c.target === 'version') actual = cur?.version ?? 0;
  else actual = cur?.revision ?? 0;
  switch (c.op) {
    case '==':
      return actual === c.value;
    case '!=':
      return actual !== c.value;
    default:
      return compareOrdered(actual, c.op, c.value);
  }
}

export interface KvStateMachineOptions {
  readonly sessions?: SessionLimits;
}

export class KvStateMachine {
  private records = new Map<string, KeyRecord>();
  /** Every key, sorted by UTF-16 code units, maintained on create/delete for prefix listing. */
  private sortedKeys = new SortedKeys();
  private sessions: SessionTable;
  private authState = new AuthState();
  private applied = 0;
  /** Told of every change as it is applied (the watch history); size estimate of the entry being applied. */
  private observer: KvObserver | undefined;
  /** The snapshot being taken in slices, told of every key about to change. */
  private job: KvSnapshotJob | undefined;
  private entryBytes = 0;

  constructor(opts: KvStateMachineOptions = {}) {
    this.sessions = new SessionTable(opts.sessions ?? DEFAULT_SESSION_LIMITS);
  }

  /** Index of the last entry applied or skipped. */
  get appliedIndex(): number {
    return this.applied;
  }

  /** Number of keys. */
  get size(): number {
    return this.records.size;
  }

  /** Number of live client sessions (for status pages). */
  get sessionCount(): number {
    return this.sessions.clientCount;
  }

  /** Users, roles, sessions and the enabled flag (read-only outside `apply`). */
  get auth(): AuthState {
    return this.authState;
  }

  get(key: string): KeyRecord | undefined {
    return this.records.get(key);
  }

  /** Tells `observer` of every change applied from now on, and of every snapshot restore. */
  observe(observer: KvObserver): void {
    this.observer = observer;
  }

  /** Keys starting with `prefix`, sorted, at most `limit`, strictly after `after` when given (paging). */
  list(prefix: string, limit: number, after?: string): KeyRecord[] {
    const out: KeyRecord[] = [];
    if (limit <= 0) return out;
    const skipAfter = after !== undefined && after >= prefix;
    for (const k of this.sortedKeys.from(skipAfter ? after : prefix)) {
      if (!k.startsWith(prefix)) break;
      if (skipAfter && k === after) continue;
      out.push(this.records.get(k) as KeyRecord);
      if (out.length >= limit) break;
    }
    return out;
  }

  /** Records that entries up to `index` (e.g. noops) need no application. */
  skipTo(index: number): void {
    if (index > this.applied) this.applied = index;
  }

  /**
   * Applies the entry at `index` (strictly greater than appliedIndex: a host bug otherwise, which throws).
   * A malformed entry changes nothing and yields `invalid`. `decoded`, when given, must be the command
   * `data` was encoded from (the proposer's own), which spares decoding it again.
   */
  apply(index: number, data: Uint8Array, decoded?: LogCommand): ApplyResult {
    if (!Number.isSafeInteger(index) || index <= this.applied) {
      throw new Error(`apply(${index}) after applied index ${this.applied}: indexes must strictly increase`);
    }
    this.applied = index;
    this.entryBytes = data.byteLength;
    let cmd: LogCommand;
    try {
      cmd = decoded ?? decodeCommand(data);
    } catch (e) {
      if (e instanceof InvalidCommandError) return { kind: 'invalid', error: e.message };
      throw e;
    }
    if (cmd.op === 'auth') return this.authState.apply(index, cmd);
    if (cmd.op === 'as-user') return this.applyAsUser(index, cmd);
    const id = cmd.requestId;
    if (id !== undefined) {
      const seen = this.sessions.lookup(id, index);
      if (seen.kind === 'duplicate') return seen.result;
      if (seen.kind === 'expired') return { kind: 'expired-session', requestId: { client: id.client, seq: id.seq } };
    }
    // With auth on, a key command must name its user (see applyAsUser).
    const result: ApplyResult = this.authState.enabled ? { kind: 'unauthenticated' } : this.execute(index, cmd);
    if (id !== undefined) this.sessions.record(id, index, result);
    return result;
  }

  /** A key command on behalf of a user: its permissions are checked again here when auth is on. */
  private applyAsUser(index: number, cmd: AsUserCommand): ApplyResult {
    const inner = cmd.command;
    const id = inner.requestId;
    if (id !== undefined) {
      const seen = this.sessions.lookup(id, index);
      if (seen.kind === 'duplicate') return seen.result;
      if (seen.kind === 'expired') return { kind: 'expired-session', requestId: { client: id.client, seq: id.seq } };
    }
    const auth = this.authState;
    let result: ApplyResult;
    if (!auth.enabled) result = this.execute(index, inner);
    else if (auth.user(cmd.user) === undefined) result = { kind: 'unauthenticated' };
    else if (!auth.permits(cmd.user, inner)) result = { kind: 'permission-denied' };
    else result = this.execute(index, inner);
    if (id !== undefined) this.sessions.record(id, index, result);
    return result;
  }

  private execute(index: number, cmd: Command): ApplyResult {
    switch (cmd.op) {
      case 'put': {
        const cur = this.records.get(cmd.key);
        if (!conditionsHold(cur, cmd)) return { kind: 'precondition-failed', key: cmd.key, current: cur ?? null };
        return this.put(index, cmd.key, cmd.value);
      }
      case 'delete': {
        const cur = this.records.get(cmd.key);
        if (!conditionsHold(cur, cmd)) return { kind: 'precondition-failed', key: cmd.key, current: cur ?? null };
        return this.delete(index, cmd.key);
      }
      case 'txn': {
        const succeeded = cmd.compare.every((c) => compareHolds(this.records.get(c.key), c));
        const ops = succeeded ? cmd.success : cmd.failure;
        return { kind: 'txn', succeeded, revision: index, results: ops.map((op) => this.runOp(index, op)) };
      }
    }
  }

  private runOp(index: number, op: TxnOp): TxnOpResult {
    if (op.op === 'put') return this.put(index, op.key, op.value);
    if (op.op === 'delete') return this.delete(index, op.key);
    const rec = this.records.get(op.key);
    return rec === undefined ? { kind: 'not-found', key: op.key } : { kind: 'found', record: rec };
  }

  private put(index: number, key: string, value: JsonValue): WriteResult {
    const cur = this.records.get(key);
    this.job?.willChange(key, cur, false);
    if (cur === undefined) {
      this.records.set(key, Object.freeze({ key, value, version: 1, revision: index, createRevision: index }));
      this.sortedKeys.insert(key);
      this.observer?.change({ type: 'put', key, value, revision: index, version: 1 }, this.entryBytes);
      return { kind: 'created', key, revision: index, version: 1 };
    }
    const version = cur.version + 1;
    this.records.set(key, Object.freeze({ key, value, version, revision: index, createRevision: cur.createRevision }));
    this.observer?.change({ type: 'put', key, value, revision: index, version }, this.entryBytes);
    return { kind: 'replaced', key, revision: index, version, prevRevision: cur.revision };
  }

  private delete(index: number, key: string): WriteResult {
    const cur = this.records.get(key);
    if (cur === undefined) return { kind: 'not-found', key };
    this.job?.willChange(key, cur, true);
    this.records.delete(key);
    this.sortedKeys.delete(key);
    this.observer?.change({ type: 'delete', key, revision: index, version: cur.version }, 0);
    return { kind: 'deleted', key, revision: index, version: cur.version, prevRevision: cur.revision };
  }

  /**
   * The whole state (keys, sessions, auth, applied index) as msgpack bytes. Keys are written sorted,
   * sessions in activity order and the auth tables sorted by name, so equal states give equal bytes.
   */
  snapshot(): Uint8Array {
    const keys: (string | number)[] = [];
    for (const k of this.sortedKeys) keys.push(...recordFields(this.records.get(k) as KeyRecord));
    return pack([SNAPSHOT_FORMAT, this.applied, keys, this.sessions.snapshot(), this.authState.snapshot()]);
  }

  /**
   * The same snapshot, taken in slices, copy-on-write (see snapshot-job.ts): starting it costs next to
   * nothing; the job's steps encode the state as it is now while later applies go on.
   */
  beginSnapshot(): SnapshotJob {
    this.job?.finishNow();
    const job: KvSnapshotJob = new KvSnapshotJob(
      SNAPSHOT_FORMAT,
      this.applied,
      this.records.size,
      this.sessions.snapshot(),
      this.authState.snapshot(),
      {
        keysAfter: (after) => {
          const it = this.sortedKeys.from(after ?? '');
          if (after === undefined) return it;
          let first = it.next();
          if (!first.done && first.value === after) first = it.next();
          let pending: IteratorResult<string> | undefined = first;
          return {
            next: () => {
              if (pending !== undefined) {
                const r = pending;
                pending = undefined;
                return r;
              }
              return it.next();
            },
          };
        },
        get: (key) => this.records.get(key),
      },
      () => {
        if (this.job === job) this.job = undefined;
      },
    );
    this.job = job;
    return job;
  }

  /** Replaces the whole state with a snapshot's. Throws (changing nothing) if the bytes are malformed. */
  restore(bytes: Uint8Array): void {
    const snap = decodeSnapshot(bytes);
    // A snapshot being taken keeps the state it started from: finish it before the state is replaced.
    this.job?.finishNow();
    const records = new Map<string, KeyRecord>();
    const sorted: string[] = [];
    for (const r of snap.records) {
      records.set(r.key, r);
      sorted.push(r.key);
    }
    const sessions = new SessionTable(this.sessions.limits);
    sessions.restore(snap.sessions);
    this.records = records;
    this.sortedKeys = SortedKeys.fromSorted(sorted);
    this.sessions = sessions;
    this.authState = snap.auth;
    this.applied = snap.applied;
    this.observer?.restored(snap.applied);
  }
}

function bad(what: string): never {
  throw new Error(`Malformed kv snapshot: ${what}`);
}

const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x);

function decodeSnapshot(bytes: Uint8Array): {
  applied: number;
  records: KeyRecord[];
  sessions: SessionSnapshot;
  auth: AuthState;
} {
  let raw: unknown;
  try {
    raw = unpack(bytes);
  } catch {
    bad('not msgpack');
  }
  const v1 = Array.isArray(raw) && raw.length === 4 && raw[0] === SNAPSHOT_FORMAT_V1;
  const v2 = Array.isArray(raw) && raw.length === 5 && raw[0] === SNAPSHOT_FORMAT;
  if (!v1 && !v2) bad('unknown format');
  const [, applied, keys, sessions, authRaw] = raw as unknown[];
  const auth = v2 ? AuthState.restore(authRaw) : new AuthState();
  if (!isInt(applied) || applied < 0) bad('applied index');
  if (!Array.isArray(keys) || keys.length % 5 !== 0) bad('keys');
  const records: KeyRecord[] = [];
  for (let i = 0; i < keys.length; i += 5) {
    const [key, json, version, revision, createRevision] = keys.slice(i, i + 5) as unknown[];
    if (typeof key !== 'string' || typeof json !== 'string' || !isInt(version) || !isInt(revision)) bad('record');
    if (!isInt(createRevision)) bad('record');
    if (records.length > 0 && (records[records.length - 1] as KeyRecord).key >= key) bad('keys not sorted');
    let value: JsonValue;
    try {
      value = JSON.parse(json) as JsonValue;
    } catch {
      return bad('record value');
    }
    records.push(Object.freeze({ key, value, version, revision, createRevision }));
  }
  if (!Array.isArray(sessions) || sessions.length !== 2) bad('sessions');
  const [live, retired] = sessions as unknown[];
  if (!Array.isArray(live) || !Array.isArray(retired)) bad('sessions');
  for (const s of live as unknown[]) {
    if (!Array.isArray(s) || s.length !== 6 || typeof s[0] !== 'string' || !isInt(s[1]) || !isInt(s[2])) bad('session');
    if (!isInt(s[3]) || !Array.isArray(s[4]) || !Array.isArray(s[5]) || s[4].length !== s[5].length) bad('session');
    if (!(s[4] as unknown[]).every(isInt) || !(s[5] as unknown[]).every((x) => typeof x === 'string')) bad('session');
  }
  for (const r of retired as unknown[]) {
    if (!Array.isArray(r) || r.length !== 2 || typeof r[0] !== 'string' || !isInt(r[1])) bad('retired session');
  }
  return { applied, records, sessions: sessions as SessionSnapshot, auth };
}
