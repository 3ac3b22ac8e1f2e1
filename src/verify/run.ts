/**
 * One verification run: start a cluster of real processes behind link proxies, run the workload under the
 * fault schedule, heal, check that writes are served again within a bound, stop every node (SIGKILL) and
 * restart them all, read every key, then check the whole history for linearizability and look for
 * acknowledged writes that vanished. Writes the history (JSON lines) and a readable report.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { HistoryEvent } from '../check/linearizability.js';
import type { JsonValue } from '../kv/json.js';
import { makeRng } from '../raft/rng.js';
import { checkInWorker } from './check-worker.js';
import { VerifyCluster } from './cluster.js';
import { Nemesis, type FaultKind } from './nemesis.js';
import { leaderKillRecoveries, lostWrites, reportText, summaryLines, type VerifySummary } from './report.js';
import { nowNs, runOp, Workload } from './workload.js';

export interface VerifyOptions {
  readonly nodes: number;
  readonly durationS: number;
  readonly faults: readonly FaultKind[];
  readonly seed: number;
  /** Directory for history.jsonl and report.txt (none written when undefined). */
  readonly outDir?: string;
  readonly clients?: number;
  /** Keys in use at once (default 5). */
  readonly keys?: number;
  /** Operations per key before a fresh key takes its place (default 300; 0: never). */
  readonly opsPerKey?: number;
  /** Read level of the workload's gets (default linearizable). */
  readonly reads?: 'linearizable' | 'lease';
  /** Bound on the time to serve a write after healing (default 10 s). */
  readonly recoverBoundMs?: number;
  /** Per-request timeout of the workload (default 1000 ms). */
  readonly requestTimeoutMs?: number;
  readonly thinkMs?: number;
  /** Fault schedule: quiet gap and hold durations in ms. */
  readonly gapMs?: readonly [number, number];
  readonly holdMs?: readonly [number, number];
  /** Seconds between progress lines (0: none). */
  readonly progressS?: number;
  /** Keep the node data directory (default: removed at the end). */
  readonly keepData?: boolean;
}

export interface VerifyIO {
  out(line: string): void;
  err(line: string): void;
}

export const DEFAULT_KEYS = 5;
export const DEFAULT_OPS_PER_KEY = 300;

/** Reads every key linearizably (retrying until it answers), recording each read in the history. */
async function finalReads(
  cluster: VerifyCluster,
  keys: readonly string[],
  history: HistoryEvent[],
  origin: bigint,
  deadline: number,
): Promise<{ values: Map<string, JsonValue>; unread: string[] }> {
  const values = new Map<string, JsonValue>();
  const unread: string[] = [];
  for (const key of keys) {
    let done = false;
    for (let attempt = 0; !done && Date.now() < deadline; attempt++) {
      const leader = await cluster.leader();
      const node = leader ?? cluster.ids[attempt % cluster.ids.length]!;
      const invoke: HistoryEvent = {
        process: 'final',
        type: 'invoke',
        f: 'get',
        key,
        value: null,
        time: nowNs(origin),
      };
      const r = await runOp(cluster.url(node), 'get', key, null, { timeoutMs: 2000 });
      if (r.type === 'ok') {
        history.push(invoke, {
          process: 'final',
          type: 'ok',
          f: 'get',
          key,
          value: r.value ?? null,
          time: nowNs(origin),
        });
        values.set(key, r.value ?? null);
        done = true;
      } else await sleep(100);
    }
    if (!done) unread.push(key);
  }
  return { values, unread };
}

export async function runVerify(opts: VerifyOptions, io: VerifyIO): Promise<VerifySummary> {
  // Separate streams: the fault schedule's draws do not depend on how many operations the clients made.
  const faultRng = makeRng(opts.seed);
  const rng = makeRng((opts.seed ^ 0x5eed1e55) >>> 0);
  const origin = process.hrtime.bigint();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'quorumkv-verify-'));
  const recoverBoundMs = opts.recoverBoundMs ?? 10_000;
  const problems: string[] = [];
  let cluster: VerifyCluster | undefined;
  let workload: Workload | undefined;
  let nemesis: Nemesis | undefined;
  let timer: NodeJS.Timeout | undefined;
  const killOnExit = () => cluster?.killAllSync();
  const onSignal = () => {
    killOnExit();
    if (opts.keepData !== true) rmSync(dataDir, { recursive: true, force: true });
    process.exit(130);
  };
  process.on('exit', killOnExit);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    cluster = await VerifyCluster.start({
      nodes: opts.nodes,
      dir: dataDir,
      requestTimeoutMs: 900,
      ...(opts.faults.includes('disk-full') ? { smallDisksMiB: 64 } : {}),
    });
    await cluster.waitLeader(20_000);
    io.out(`cluster of ${opts.nodes} nodes up (data ${dataDir}); running ${opts.durationS} s`);
    workload = new Workload({
      urls: cluster.urls,
      clients: opts.clients ?? 5,
      keys: opts.keys ?? DEFAULT_KEYS,
      opsPerKey: opts.opsPerKey ?? DEFAULT_OPS_PER_KEY,
      reads: opts.reads ?? 'linearizable',
      rng,
      timeoutMs: opts.requestTimeoutMs ?? 1000,
      thinkMs: opts.thinkMs ?? 5,
      origin,
    });
    nemesis = new Nemesis(cluster, {
      kinds: opts.faults,
      rng: faultRng,
      origin,
      gapMs: opts.gapMs ?? [1000, 4000],
      holdMs: opts.holdMs ?? [1000, 5000],
      log: (l) => io.out(`[${(nowNs(origin) / 1e9).toFixed(1)}s] ${l}`),
    });
    workload.start();
    nemesis.start();
    const progressS = opts.progressS ?? 5;
    const w = workload;
    const nem = nemesis;
    timer =
      progressS > 0
        ? setInterval(() => {
            const s = w.stats;
            const active = [...nem.active].map((f) => `${f.kind} ${f.detail}`).join('; ') || 'none';
            io.out(
              `[${(nowNs(origin) / 1e9).toFixed(1)}s] ops ok ${s.ok} fail ${s.fail} info ${s.info}; ` +
                `faults ${nem.faults.length}, active: ${active}`,
            );
          }, progressS * 1000)
        : undefined;
    await sleep(opts.durationS * 1000);
    await nemesis.stop();
    await cluster.healAll();
    const healedAt = nowNs(origin);
    io.out(`[${(healedAt / 1e9).toFixed(1)}s] healed everything; waiting for a write to succeed`);
    let recoverMs: number | undefined;
    const boundAt = Date.now() + recoverBoundMs;
    while (recoverMs === undefined && Date.now() < boundAt) {
      const ack = workload.writeAcks.find((a) => a.invoke > healedAt);
      if (ack !== undefined) recoverMs = (ack.complete - healedAt) / 1e6;
      else await sleep(20);
    }
    if (recoverMs === undefined) problems.push(`no write succeeded within ${recoverBoundMs} ms of healing`);
    await workload.stop();
    if (timer !== undefined) clearInterval(timer);

    io.out(`[${(nowNs(origin) / 1e9).toFixed(1)}s] full restart: SIGKILL every node, then start them all`);
    await Promise.all(cluster.ids.map((id) => cluster!.kill(id, 'SIGKILL')));
    await Promise.all(cluster.ids.map((id) => cluster!.startNode(id)));
    const history = workload.history;
    const { values, unread } = await finalReads(cluster, workload.usedKeys, history, origin, Date.now() + 30_000);
    if (unread.length > 0) problems.push(`keys not readable after the full restart: ${unread.join(', ')}`);
    await cluster.close();

    let historyFile: string | undefined;
    let reportFile: string | undefined;
    if (opts.outDir !== undefined) {
      mkdirSync(opts.outDir, { recursive: true });
      historyFile = path.join(opts.outDir, 'history.jsonl');
      reportFile = path.join(opts.outDir, 'report.txt');
      writeFileSync(historyFile, history.map((e) => JSON.stringify(e)).join('\n') + '\n');
    }
    io.out(`checking ${history.length} events...`);
    const checkStart = Date.now();
    const linearizable = await checkInWorker(history, Math.max(60_000, opts.durationS * 1000));
    if (!linearizable.ok) {
      problems.push(
        linearizable.error ??
          (linearizable.timedOut === true ? 'linearizability check timed out' : 'history not linearizable'),
      );
    }
    io.out(`check took ${((Date.now() - checkStart) / 1000).toFixed(1)} s`);
    const lost = lostWrites(history, values);
    if (lost.length > 0) problems.push(`${lost.length} acknowledged writes lost`);
    const s = workload.stats;
    const summary: VerifySummary = {
      seed: opts.seed,
      nodes: opts.nodes,
      durationS: opts.durationS,
      faultKinds: opts.faults,
      ops: { ok: s.ok, fail: s.fail, info: s.info, total: s.ok + s.fail + s.info, refused: s.refused },
      faults: nemesis.faults,
      linearizable,
      lost,
      recoverMs,
      recoverBoundMs,
      leaderKillRecoveryMs: leaderKillRecoveries(nemesis.faults, workload.writeAcks),
      finalValues: values,
      acknowledgedWrites: workload.writeAcks.length,
      historyFile,
      reportFile,
      passed: problems.length === 0,
      problems,
      reasons: s.reasons,
    };
    if (reportFile !== undefined) writeFileSync(reportFile, reportText(summary));
    for (const l of summaryLines(summary)) io.out(l);
    if (linearizable.failure !== undefined) io.out(linearizable.failure.explanation);
    if (historyFile !== undefined) io.out(`history: ${historyFile}\nreport: ${reportFile}`);
    return summary;
  } finally {
    if (timer !== undefined) clearInterval(timer);
    await nemesis?.stop().catch(() => undefined);
    await workload?.stop().catch(() => undefined);
    await cluster?.close();
    process.off('exit', killOnExit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (opts.keepData !== true) rmSync(dataDir, { recursive: true, force: true });
  }
}
