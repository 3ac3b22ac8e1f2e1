/**
 * Key-value operation histories: the event format (also written to disk as JSON lines), its parser and
 * the pairing of invocations with their completions.
 *
 * An event is `{"process":P,"type":"invoke"|"ok"|"fail"|"info","f":"get"|"put"|"cas"|"delete","key":K,
 * "value":V,"time":NS}`. Each `invoke` is followed (later in the history) by exactly one completion from
 * the same process: `ok` (took effect; for get, `value` is what was read, null for a missing key), `fail`
 * (definitely did not take effect; for cas and delete it still read the state: the expected value was not
 * there / the key was missing) or `info` (unknown: may take effect at any time after its invoke, or
 * never). For cas the invoke's `value` is `[expected, new]`; for put it is the written value. An invoke
 * without a completion at the end of the history counts as `info`.
 *
 * A client that got a definite error for a cas or a delete *without* the server reading the key (e.g. a 503)
 * should record `info`, not `fail`: `fail` of cas/delete is checked as a read.
 */
import { jsonError, type JsonValue } from '../kv/json.js';

export type OpFunction = 'get' | 'put' | 'cas' | 'delete';
export type EventType = 'invoke' | 'ok' | 'fail' | 'info';

export interface HistoryEvent {
  readonly process: number | string;
  readonly type: EventType;
  readonly f: OpFunction;
  readonly key: string;
  readonly value?: JsonValue;
  /** Nanoseconds (any monotonic unit works); equal times count as concurrent. */
  readonly time: number;
}

/** An invocation paired with its completion. */
export interface HistoryOp {
  readonly process: number | string;
  readonly f: OpFunction;
  readonly key: string;
  /** The invoke's value (put: the value written; cas: [expected, new]). */
  readonly input: JsonValue;
  /** The completion's value (get ok: the value read, null for missing). */
  readonly output: JsonValue;
  readonly outcome: 'ok' | 'fail' | 'info';
  readonly invokeTime: number;
  /** Infinity for `info` (it stays concurrent with everything after its invoke). */
  readonly completeTime: number;
  /** Position of the invoke event in the history. */
  readonly position: number;
}

export class HistoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HistoryError';
  }
}

const TYPES: readonly string[] = ['invoke', 'ok', 'fail', 'info'];
const FUNCTIONS: readonly string[] = ['get', 'put', 'cas', 'delete'];

/** Validates one untrusted event; throws HistoryError naming `where`. */
export function validateEvent(x: unknown, where: string): HistoryEvent {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw new HistoryError(`${where}: not a JSON object`);
  const e = x as Record<string, unknown>;
  if (typeof e.process !== 'number' && typeof e.process !== 'string') {
    throw new HistoryError(`${where}: process must be a number or a string`);
  }
  if (typeof e.type !== 'string' || !TYPES.includes(e.type)) throw new HistoryError(`${where}: bad type`);
  if (typeof e.f !== 'string' || !FUNCTIONS.includes(e.f)) throw new HistoryError(`${where}: bad f`);
  if (typeof e.key !== 'string') throw new HistoryError(`${where}: key must be a string`);
  if (typeof e.time !== 'number' || !Number.isFinite(e.time)) throw new HistoryError(`${where}: time must be a number`);
  if (e.value !== undefined && jsonError(e.value) !== null) throw new HistoryError(`${where}: value is not JSON`);
  if (e.type === 'invoke' && e.f === 'cas' && (!Array.isArray(e.value) || e.value.length !== 2)) {
    throw new HistoryError(`${where}: a cas invoke's value must be [expected, new]`);
  }
  return e as unknown as HistoryEvent;
}

/** Parses a JSON-lines history (blank lines ignored); throws HistoryError with the line number. */
export function parseHistory(jsonLines: string): HistoryEvent[] {
  const out: HistoryEvent[] = [];
  const lines = jsonLines.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line.length === 0) continue;
    let x: unknown;
    try {
      x = JSON.parse(line);
    } catch {
      throw new HistoryError(`line ${i + 1}: invalid JSON`);
    }
    out.push(validateEvent(x, `line ${i + 1}`));
  }
  return out;
}

/**
 * Pairs each invoke with the next completion of the same process (in history order). A completion must
 * match its invoke's f and key. Invokes still open at the end become `info`.
 */
export function pairOperations(history: readonly HistoryEvent[]): HistoryOp[] {
  const open = new Map<string, { e: HistoryEvent; position: number }>();
  const ops: (HistoryOp | undefined)[] = [];
  const slot = new Map<number, number>();
  const finish = (inv: { e: HistoryEvent; position: number }, c: HistoryEvent | undefined): void => {
    const e = inv.e;
    const outcome = c === undefined ? 'info' : (c.type as 'ok' | 'fail' | 'info');
    if (c !== undefined && c.time < e.time) {
      throw new HistoryError(`event ${inv.position}: completion time ${c.time} is before its invoke time ${e.time}`);
    }
    ops[slot.get(inv.position) as number] = {
      process: e.process,
      f: e.f,
      key: e.key,
      input: e.value ?? null,
      output: c?.value ?? null,
      outcome,
      invokeTime: e.time,
      completeTime: outcome === 'info' || c === undefined ? Infinity : c.time,
      position: inv.position,
    };
  };
  history.forEach((e, position) => {
    const p = `${typeof e.process}:${String(e.process)}`;
    const pending = open.get(p);
    if (e.type === 'invoke') {
      if (pending !== undefined) {
        throw new HistoryError(`event ${position}: process ${String(e.process)} invokes while an operation is open`);
      }
      open.set(p, { e, position });
      slot.set(position, ops.length);
      ops.push(undefined);
      return;
    }
    if (pending === undefined) {
      throw new HistoryError(`event ${position}: ${e.type} from process ${String(e.process)} without an invoke`);
    }
    if (pending.e.f !== e.f || pending.e.key !== e.key) {
      throw new HistoryError(`event ${position}: completion does not match its invoke (f or key differs)`);
    }
    open.delete(p);
    finish(pending, e);
  });
  for (const pending of open.values()) finish(pending, undefined);
  return ops as HistoryOp[];
}

/** A short human-readable description of an operation. */
export function describeOp(op: HistoryOp): string {
  const j = (v: JsonValue): string => {
    const s = JSON.stringify(v);
    return s.length > 60 ? s.slice(0, 57) + '...' : s;
  };
  let what: string;
  switch (op.f) {
    case 'get':
      what = op.outcome === 'ok' ? `get → ${j(op.output)}` : 'get';
      break;
    case 'put':
      what = `put ${j(op.input)}`;
      break;
    case 'cas': {
      const [e, n] = Array.isArray(op.input) ? op.input : [null, null];
      what = `cas ${j(e ?? null)} → ${j(n ?? null)}`;
      break;
    }
    case 'delete':
      what = 'delete';
      break;
  }
  const end = op.completeTime === Infinity ? '…' : String(op.completeTime);
  return `process ${String(op.process)} ${what} (${op.outcome}) [${op.invokeTime}, ${end}]`;
}
