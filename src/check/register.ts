/**
 * The per-key register model of the linearizability checker, compiled to small integers.
 *
 * States are interned values: 0 is "absent" (a missing key; a put of JSON null is indistinguishable from
 * it), other values get ids by canonical JSON. Each operation becomes a transition:
 *
 *   get ok v          requires state == v, unchanged
 *   put ok/info v     any → v
 *   cas ok/info [e,n] requires state == e, → n
 *   cas fail [e,_]    requires state != e, unchanged   (a failed cas read the state)
 *   delete ok         requires state != absent, → absent
 *   delete fail       requires state == absent           (a failed delete read the absence)
 *   delete info       any → absent (if it took effect on a missing key, nothing changed anyway)
 *
 * get fail/info and put fail constrain nothing and are dropped. `info` operations are optional: they may
 * be linearized anywhere after their invoke, or never.
 */
import { canonicalJson, type JsonValue } from '../kv/json.js';
import type { HistoryOp } from './history.js';

export const ABSENT = 0;

export const enum Kind {
  Read,
  Write,
  Cas,
  CasFail,
  Delete,
  DeleteFail,
  DeleteAny,
}

export interface ModelOp {
  readonly kind: Kind;
  /** Required (Read, Cas, CasFail) value id. */
  readonly a: number;
  /** Written (Write, Cas) value id. */
  readonly b: number;
  /** May be left out of the linearization (outcome info). */
  readonly optional: boolean;
  readonly op: HistoryOp;
}

export class ValueTable {
  private ids = new Map<string, number>([['null', ABSENT]]);
  private texts: string[] = ['null'];

  id(v: JsonValue): number {
    const text = canonicalJson(v);
    let id = this.ids.get(text);
    if (id === undefined) {
      id = this.texts.length;
      this.ids.set(text, id);
      this.texts.push(text);
    }
    return id;
  }

  text(id: number): string {
    return id === ABSENT ? 'absent' : (this.texts[id] as string);
  }
}

function casArgs(op: HistoryOp): [JsonValue, JsonValue] {
  const [e, n] = op.input as JsonValue[];
  return [e ?? null, n ?? null];
}

/** The transition of `op`, or null if it constrains nothing. */
export function compileOp(op: HistoryOp, values: ValueTable): ModelOp | null {
  const optional = op.outcome === 'info';
  const mk = (kind: Kind, a: number, b: number): ModelOp => ({ kind, a, b, optional, op });
  switch (op.f) {
    case 'get':
      return op.outcome === 'ok' ? mk(Kind.Read, values.id(op.output), 0) : null;
    case 'put':
      return op.outcome === 'fail' ? null : mk(Kind.Write, 0, values.id(op.input));
    case 'cas': {
      const [e, n] = casArgs(op);
      return op.outcome === 'fail' ? mk(Kind.CasFail, values.id(e), 0) : mk(Kind.Cas, values.id(e), values.id(n));
    }
    case 'delete':
      if (op.outcome === 'ok') return mk(Kind.Delete, 0, 0);
      return op.outcome === 'fail' ? mk(Kind.DeleteFail, 0, 0) : mk(Kind.DeleteAny, 0, 0);
  }
}

/** The state after `m` from `state`, or -1 if `m` cannot take effect in `state`. */
export function step(state: number, m: ModelOp): number {
  switch (m.kind) {
    case Kind.Read:
      return state === m.a ? state : -1;
    case Kind.Write:
      return m.b;
    case Kind.Cas:
      return state === m.a ? m.b : -1;
    case Kind.CasFail:
      return state !== m.a ? state : -1;
    case Kind.Delete:
      return state !== ABSENT ? ABSENT : -1;
    case Kind.DeleteFail:
      return state === ABSENT ? state : -1;
    case Kind.DeleteAny:
      return ABSENT;
  }
}

/** Why `m` cannot take effect in `state` (for failure reports). */
export function whyNot(state: number, m: ModelOp, values: ValueTable): string {
  const cur = values.text(state);
  switch (m.kind) {
    case Kind.Read:
      return `it read ${values.text(m.a)} but the register holds ${cur}`;
    case Kind.Cas:
      return `it expected ${values.text(m.a)} but the register holds ${cur}`;
    case Kind.CasFail:
      return `it failed, so the register did not hold ${values.text(m.a)}, yet it does`;
    case Kind.Delete:
      return 'it deleted an existing key but the key is absent';
    case Kind.DeleteFail:
      return `it found the key absent but the register holds ${cur}`;
    default:
      return 'it can always take effect';
  }
}
