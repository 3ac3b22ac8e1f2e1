/**
 * Post-run analysis and rendering for `quorumkv verify`: acknowledged writes missing at the end, recovery
 * times after leader kills, the summary printed at the end and the readable report file.
 */
import type { HistoryEvent } from '../check/linearizability.js';
import type { WorkerCheckResult } from './check-worker.js';
import { pairOperations } from '../check/history.js';
import { median } from '../bench/histogram.js';
import type { JsonValue } from '../kv/json.js';
import type { FaultKind, FaultRecord } from './nemesis.js';

export interface LostWrite {
  readonly key: string;
  readonly value: JsonValue;
  /** Completion time of the acknowledgement, ns. */
  readonly ackedAt: number;
}

/**
 * Acknowledged writes (put or successful cas) whose key reads as missing in `finalValues` although no
 * delete that could have removed it (acknowledged, unknown or still open) was invoked after the write.
 */
export function lostWrites(history: readonly HistoryEvent[], finalValues: ReadonlyMap<string, JsonValue>): LostWrite[] {
  const ops = pairOperations(history);
  const lost: LostWrite[] = [];
  for (const [key, final] of finalValues) {
    if (final !== null) continue;
    const onKey = ops.filter((o) => o.key === key);
    const lastAck = onKey
      .filter((o) => o.outcome === 'ok' && (o.f === 'put' || o.f === 'cas'))
      .sort((a, b) => b.completeTime - a.completeTime)[0];
    if (lastAck === undefined) continue;
    const laterDelete = onKey.some(
      (o) => o.f === 'delete' && o.outcome !== 'fail' && o.completeTime > lastAck.invokeTime,
    );
    if (!laterDelete) {
      const value = lastAck.f === 'cas' ? ((lastAck.input as JsonValue[])[1] as JsonValue) : lastAck.input;
      lost.push({ key, value, ackedAt: lastAck.completeTime });
    }
  }
  return lost;
}

/** Time from each leader kill to the first acknowledgement of a write invoked after it, in ms. */
export function leaderKillRecoveries(
  faults: readonly FaultRecord[],
  writeAcks: readonly { invoke: number; complete: number }[],
): number[] {
  const out: number[] = [];
  for (const f of faults) {
    if (f.kind !== 'kill' || !f.hitLeader) continue;
    const ack = writeAcks.find((a) => a.invoke > f.start);
    if (ack !== undefined) out.push((ack.complete - f.start) / 1e6);
  }
  return out;
}

export interface VerifySummary {
  readonly seed: number;
  readonly nodes: number;
  readonly durationS: number;
  readonly faultKinds: readonly FaultKind[];
  readonly ops: { ok: number; fail: number; info: number; total: number; refused: number };
  readonly faults: readonly FaultRecord[];
  readonly linearizable: WorkerCheckResult;
  readonly lost: readonly LostWrite[];
  /** Time from healing to the first acknowledged write, ms (undefined: none within the bound). */
  readonly recoverMs: number | undefined;
  readonly recoverBoundMs: number;
  readonly leaderKillRecoveryMs: readonly number[];
  readonly finalValues: ReadonlyMap<string, JsonValue>;
  readonly acknowledgedWrites: number;
  readonly historyFile?: string;
  readonly reportFile?: string;
  readonly passed: boolean;
  readonly problems: readonly string[];
  /** Why operations did not succeed: `<f> <outcome> <reason>` -> count. */
  readonly reasons: Readonly<Record<string, number>>;
}

function ms(x: number | undefined): string {
  return x === undefined ? '-' : `${Math.round(x)} ms`;
}

/** The lines printed at the end of a run (also the head of the report file). */
export function summaryLines(s: VerifySummary): string[] {
  const byKind = new Map<string, number>();
  for (const f of s.faults) byKind.set(f.kind, (byKind.get(f.kind) ?? 0) + 1);
  const leaderHits = s.faults.filter((f) => f.hitLeader).length;
  const rec = s.leaderKillRecoveryMs;
  const lin = s.linearizable;
  return [
    `quorumkv verify: ${s.nodes} nodes, ${s.durationS} s, faults ${s.faultKinds.join(',') || 'none'}, seed ${s.seed}`,
    `operations: ${s.ops.total} (ok ${s.ops.ok}, fail ${s.ops.fail}, info/unknown ${s.ops.info}; ` +
      `${s.ops.refused} more refused at connect, never sent); ` +
      `acknowledged writes ${s.acknowledgedWrites}`,
    `faults injected: ${s.faults.length}` +
      (s.faults.length > 0
        ? ` (${[...byKind].map(([k, n]) => `${k} ${n}`).join(', ')}; ${leaderHits} hit the leader` +
          (byKind.has('disk-full')
            ? `; ${s.faults.filter((f) => f.stalledAfterMs !== undefined).length} disk-full nodes seen stalled`
            : '') +
          ')'
        : ''),
    `linearizability: ${lin.ok ? 'ok' : lin.error !== undefined ? `UNKNOWN (${lin.error})` : lin.timedOut === true ? 'UNKNOWN (checker timed out)' : 'VIOLATION'} ` +
      `(${lin.checkedOps} operations${lin.error === undefined ? ` on ${lin.keys} keys` : ''})`,
    `lost acknowledged writes after full restart: ${s.lost.length}`,
    `time to serve writes after healing: ${ms(s.recoverMs)} (bound ${s.recoverBoundMs} ms)`,
    `recovery after leader kills: ${rec.length === 0 ? '-' : `median ${ms(median(rec))}, max ${ms(Math.max(...rec))} over ${rec.length}`}`,
    `verdict: ${s.passed ? 'PASS' : 'FAIL'}${s.problems.length > 0 ? ' — ' + s.problems.join('; ') : ''}`,
  ];
}

/** The readable report: summary, fault timeline, final values and the failure explanation if any. */
export function reportText(s: VerifySummary): string {
  const lines = summaryLines(s);
  lines.push('', 'operations that did not succeed, by reason:');
  for (const [r, n] of Object.entries(s.reasons).sort((a, b) => b[1] - a[1])) lines.push(`  ${r}: ${n}`);
  lines.push('', 'fault timeline (seconds since start):');
  for (const f of s.faults) {
    const end = f.end === undefined ? 'end' : (f.end / 1e9).toFixed(2);
    lines.push(`  ${(f.start / 1e9).toFixed(2)} - ${end}  ${f.kind} ${f.detail}${f.hitLeader ? ' (leader)' : ''}`);
  }
  lines.push('', 'final values after full restart:');
  for (const [k, v] of s.finalValues) lines.push(`  ${k} = ${JSON.stringify(v)}`);
  if (s.lost.length > 0) {
    lines.push('', 'lost acknowledged writes:');
    for (const l of s.lost)
      lines.push(`  ${l.key} = ${JSON.stringify(l.value)} acknowledged at ${(l.ackedAt / 1e9).toFixed(3)} s`);
  }
  if (s.linearizable.failure !== undefined)
    lines.push('', 'linearizability violation:', s.linearizable.failure.explanation);
  if (s.historyFile !== undefined) lines.push('', `history: ${s.historyFile}`);
  return lines.join('\n') + '\n';
}
