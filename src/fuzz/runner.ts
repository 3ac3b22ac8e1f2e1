/**
 * One fuzz run against one mode's live cluster: start and seed it, warm up, take the baseline (state of
 * every node, memory), then send the HTTP stream and the peer stream (raft and chat: frames on the peer
 * port; quorum, eventual, causal: their internal HTTP routes) in batches, checking after each batch that
 * every node process lives and answers `/health` and that no node's state moved; at the end, after idle
 * time, that every node's memory is back within the tolerance of its baseline.
 *
 * Failures: a 5xx answer, a 2xx answer to a request the model says must be refused, a complete request
 * left unanswered (or a connection left open) for the whole timeout, a complete invalid frame that does
 * not make the node close the connection, a valid handshake refused, a dead or unhealthy node, a state
 * change, memory above the tolerance. Each names the seed and what reproduces it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isDeepStrictEqual } from 'node:util';
import { generateFrameCase, sendFrameCase, type FrameCase } from './frames.js';
import { describeCase, generateCase, type FuzzMode, type GenerateOptions, type HttpCase } from './http-gen.js';
import { modelOf, peerRoutesOf } from './http-routes.js';
import { ClientRefused, ClientSender, plainBytes, sendRaw, type HttpOutcome } from './http-send.js';
import { rssOf, startTarget } from './targets.js';

export const MODES: readonly FuzzMode[] = ['raft', 'chat', 'quorum', 'eventual', 'causal'];

/**
 * A node's RSS after the run (and up to 20 s of idle) must be at most its baseline plus the larger of these.
 * RSS is coarse: measured with --trace-gc, the JS heap after a full GC stays flat (19-20 MB over a 30,000-case
 * raft run) while RSS ends up to about 40 MiB above a warmed-up baseline and stays there — memory the
 * allocator keeps after requests of up to a megabyte (a high-water mark, reached within the first ~10,000
 * cases, not a leak). The tolerance lets that through; a leak shows once it exceeds 50 MiB — about 5 KB per
 * request over a 10,000-request run if every request leaks, more if only some do. Smaller leaks need a heap
 * profile (e.g. nodes started with --trace-gc: the heap after each full GC).
 */
export const DEFAULT_MEMORY_TOLERANCE = { mib: 50, ratio: 0.5 } as const;

export interface RunOptions {
  readonly mode: FuzzMode;
  readonly seed: number;
  /** HTTP requests (cases) to send. */
  readonly count: number;
  /** Peer frames (raft, chat) or internal requests (other modes) to send. */
  readonly frames: number;
  readonly concurrency?: number;
  /** Cases per batch (checks run between batches). */
  readonly batch?: number;
  /** Cases of each stream sent before the baseline (default a fifth of the run, 300 to 2,000). */
  readonly warmup?: number;
  /** Idle time before the final memory reading. */
  readonly idleMs?: number;
  /** Memory tolerance: end RSS ≤ baseline + max(mib MiB, ratio × baseline); see DEFAULT_MEMORY_TOLERANCE. */
  readonly memory?: { readonly mib: number; readonly ratio: number };
  readonly timeoutMs?: number;
  readonly log?: (line: string) => void;
  /** Replay only this case (printing it and its answer). */
  readonly only?: { readonly stream: 'http' | 'peer'; readonly index: number };
}

export interface Failure {
  readonly kind:
    | '5xx'
    | 'accepted'
    | 'auth-bypass'
    | 'hang'
    | 'frame-kept-open'
    | 'handshake'
    | 'crash'
    | 'health'
    | 'state'
    | 'memory'
    | 'error';
  readonly stream?: 'http' | 'peer';
  readonly index?: number;
  readonly detail: string;
}

export interface StreamReport {
  /** Cases sent, and requests (a replayed case is sent twice). */
  cases: number;
  requests: number;
  raw: number;
  byStatus: Record<string, number>;
  byOutcome: Record<string, number>;
  byLabel: Record<string, number>;
  fiveXX: number;
  accepted: number;
  timeouts: number;
  errors: number;
}

export interface MemoryReport {
  readonly node: number;
  readonly pid: number | undefined;
  readonly baselineMiB: number;
  readonly peakMiB: number;
  readonly endMiB: number;
  readonly limitMiB: number;
  readonly ok: boolean;
}

export interface ModeReport {
  readonly mode: FuzzMode;
  readonly seed: number;
  readonly http: StreamReport;
  readonly peer: StreamReport;
  /** What the peer stream is in this mode. */
  readonly peerKind: 'tcp-frames' | 'internal-http';
  readonly failures: Failure[];
  /** Failures by kind (all of them; `failures` keeps the first 50). */
  readonly failureCounts: Record<string, number>;
  readonly stateUnchanged: boolean;
  readonly memory: readonly MemoryReport[];
  readonly terms?: { before: unknown; after: unknown };
  readonly durationMs: number;
  readonly ok: boolean;
}

function emptyStream(): StreamReport {
  return {
    cases: 0,
    requests: 0,
    raw: 0,
    byStatus: {},
    byOutcome: {},
    byLabel: {},
    fiveXX: 0,
    accepted: 0,
    timeouts: 0,
    errors: 0,
  };
}

const inc = (o: Record<string, number>, k: string, n = 1): void => {
  o[k] = (o[k] ?? 0) + n;
};

const MiB = 1024 * 1024;

async function pool(n: number, from: number, to: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = from;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < to) await work(next++);
    }),
  );
}

export function reproduceCommand(mode: FuzzMode, seed: number, stream?: 'http' | 'peer', index?: number): string {
  const one = stream === undefined || index === undefined ? '' : ` --case ${stream}:${index}`;
  return `npm run fuzz -- --mode ${mode} --seed ${seed}${one}`;
}

export async function runMode(o: RunOptions): Promise<ModeReport> {
  const t0 = Date.now();
  const log = o.log ?? (() => {});
  const concurrency = o.concurrency ?? 16;
  const batch = o.batch ?? 1000;
  const timeoutMs = o.timeoutMs ?? 15_000;
  const memTol = o.memory ?? DEFAULT_MEMORY_TOLERANCE;
  const target = await startTarget(o.mode, log);
  const model = modelOf(o.mode);
  const peerRoutes = peerRoutesOf(o.mode);
  const peerKind = peerRoutes === undefined ? 'tcp-frames' : 'internal-http';
  const failures: Failure[] = [];
  const failureCounts: Record<string, number> = {};
  const fail = (f: Failure): void => {
    inc(failureCounts, f.kind);
    if (failures.length < 50) failures.push(f);
    log(
      `FAIL ${o.mode} ${f.kind}${f.stream === undefined ? '' : ` ${f.stream}#${f.index}`}: ${f.detail}\n  reproduce: ${reproduceCommand(o.mode, o.seed, f.stream, f.index)}`,
    );
  };
  const http = emptyStream();
  const peer = emptyStream();
  // Short for the keep-alive client: a request it loses to a closing connection is asked again raw (below).
  const client = new ClientSender(Math.min(timeoutMs, 5000));
  let leaderIndex = await target.leader();
  const genHttp = (stream: string): GenerateOptions => ({ model, ctx: target.context, seed: o.seed, stream });
  const genPeer = (stream: string): GenerateOptions => ({
    model,
    ctx: target.context,
    seed: o.seed,
    stream,
    routes: peerRoutes,
    rawShare: 0.15,
  });
  const frameTargets = target.frameTargets ?? [];

  const sendHttp = async (
    c: HttpCase,
    report: StreamReport,
    stream: 'http' | 'peer',
    record: boolean,
  ): Promise<HttpOutcome[]> => {
    const nodeIndex = c.node === 'leader' ? leaderIndex : c.node;
    const node = target.nodes[nodeIndex] ?? (target.nodes[0] as (typeof target.nodes)[number]);
    const outs: HttpOutcome[] = [];
    for (let rep = 0; rep < c.repeat; rep++) {
      let out: HttpOutcome;
      let raw = c.transport === 'raw';
      if (!raw) {
        try {
          out = await client.send(node.url, c);
        } catch (err) {
          if (!(err instanceof ClientRefused)) throw err;
          raw = true;
          out = await sendRaw(node.port, [plainBytes(c)], [0], c.method === 'HEAD', timeoutMs);
        }
        if (out.ended === 'timeout' && out.statuses.length === 0) {
          // A keep-alive client can lose a request to a connection the node announced it would close (it
          // answered the previous request with "connection: close"): the client then waits out its timeout.
          // Ask again on a connection of its own: only if that too goes unanswered is it the node's doing.
          if (record) inc(report.byOutcome, 'client-timeout-asked-again');
          raw = true;
          out = await sendRaw(node.port, [plainBytes(c)], [0], c.method === 'HEAD', timeoutMs);
        }
      } else {
        out = await sendRaw(node.port, c.writes, c.gapsMs, c.method.trim().toUpperCase() === 'HEAD', timeoutMs);
      }
      outs.push(out);
      if (!record) continue;
      report.requests++;
      if (raw) report.raw++;
      inc(report.byOutcome, out.ended);
      if (out.statuses.length === 0) inc(report.byStatus, 'none');
      for (const s of out.statuses) inc(report.byStatus, String(s));
      if (out.ended === 'timeout') report.timeouts++;
      if (out.ended === 'error') report.errors++;
      const where = `node ${nodeIndex} (${node.role})`;
      // Every answer on the connection must be below 500; only the first answers the case (a pipelined
      // `GET /health` or stray bytes may follow it).
      out.statuses.forEach((s, k) => {
        if (s >= 500) {
          report.fiveXX++;
          fail({
            kind: '5xx',
            stream,
            index: c.index,
            detail: `${s} from ${where}: ${out.body5xx ?? ''}\n  request: ${describeCase(c)}`,
          });
        } else if (k === 0 && s >= 200 && s < 300 && (c.expectRefusal || rep > 0)) {
          report.accepted++;
          const what = rep > 0 ? 'a replayed signed request' : 'a request that must be refused';
          fail({
            kind: 'accepted',
            stream,
            index: c.index,
            detail: `${s} from ${where} for ${what}\n  request: ${describeCase(c)}`,
          });
        }
      });
      const first = out.statuses[0];
      if (
        rep === 0 &&
        c.expectAuthRefusal &&
        first !== undefined &&
        !answeredBeforeHandlers(first, out.firstBody ?? '')
      ) {
        fail({
          kind: 'auth-bypass',
          stream,
          index: c.index,
          detail: `${first} ${JSON.stringify(out.firstBody ?? '')} from ${where}: a handler answered a request without the credential its route requires\n  request: ${describeCase(c)}`,
        });
      }
      if (out.ended === 'timeout' && c.expectAnswer && out.statuses.length === 0) {
        fail({
          kind: 'hang',
          stream,
          index: c.index,
          detail: `no answer in ${timeoutMs} ms from ${where}\n  request: ${describeCase(c)}`,
        });
      } else if (out.ended === 'timeout' && raw) {
        // The raw sender half-closes once it has written: a node must then answer what it can and close.
        fail({
          kind: 'hang',
          stream,
          index: c.index,
          detail: `${where} kept the connection open ${timeoutMs} ms after the client finished (answers ${JSON.stringify(out.statuses)})\n  request: ${describeCase(c)}`,
        });
      }
    }
    return outs;
  };

  const runHttp = async (
    opts: GenerateOptions,
    index: number,
    report: StreamReport,
    stream: 'http' | 'peer',
    record = true,
  ): Promise<void> => {
    const c = generateCase(opts, index);
    if (record) {
      report.cases++;
      inc(report.byLabel, c.label.split(':')[0] as string);
    }
    // Every send has its own timeout; this one catches anything that would still hold the run up.
    let timer: NodeJS.Timeout | undefined;
    const stuck = await Promise.race([
      sendHttp(c, report, stream, record).then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), timeoutMs * (c.repeat + 1) + 5000);
      }),
    ]);
    clearTimeout(timer);
    if (stuck) fail({ kind: 'hang', stream, index, detail: `the case did not finish: ${describeCase(c)}` });
  };

  const runFrame = async (stream: string, index: number, record = true): Promise<void> => {
    const c: FrameCase = generateFrameCase(o.seed, stream, index, frameTargets);
    const node = target.nodes[c.node] as (typeof target.nodes)[number];
    const t = frameTargets[c.node];
    if (node.raftPort === undefined || t === undefined) return;
    const out = await sendFrameCase(node.raftPort, c, t, target.keys, Math.min(timeoutMs, 5000));
    if (!record) return;
    peer.cases++;
    peer.requests++;
    inc(peer.byLabel, c.label.replace(/ as (member|non-member) \d+/, ' as $1'));
    inc(peer.byOutcome, out.ended);
    if (out.ended === 'timeout') {
      peer.timeouts++;
      fail({
        kind: 'hang',
        stream: 'peer',
        index,
        detail: `node ${c.node} kept the connection open after our half-close: ${c.label}`,
      });
    }
    if (out.ended === 'error') {
      peer.errors++;
      if (out.welcomed === false)
        fail({
          kind: 'handshake',
          stream: 'peer',
          index,
          detail: `node ${c.node}: a valid handshake as ${c.handshakeAs} failed (${out.error ?? ''})`,
        });
    }
    if (out.keptOpen)
      fail({
        kind: 'frame-kept-open',
        stream: 'peer',
        index,
        detail: `node ${c.node} kept reading after a complete invalid frame: ${c.label}`,
      });
  };

  const runPeer = (stream: string, index: number, record = true): Promise<void> =>
    peerRoutes === undefined ? runFrame(stream, index, record) : runHttp(genPeer(stream), index, peer, 'peer', record);

  const checkNodes = async (when: string): Promise<boolean> => {
    let ok = true;
    for (const n of target.nodes) {
      if (!n.alive()) {
        fail({ kind: 'crash', detail: `node ${n.index} (pid ${n.pid() ?? '?'}) is not running ${when}\n${n.logs()}` });
        ok = false;
        continue;
      }
      let healthy = false;
      for (let attempt = 0; attempt < 20 && !healthy; attempt++) {
        try {
          const res = await fetch(`${n.url}/health`, { signal: AbortSignal.timeout(5000) });
          healthy = res.status === 200;
          await res.body?.cancel();
        } catch {
          // retry
        }
        if (!healthy) await sleep(250);
      }
      if (!healthy) {
        fail({ kind: 'health', detail: `node ${n.index} does not answer /health with 200 ${when}\n${n.logs()}` });
        ok = false;
      }
    }
    return ok;
  };

  try {
    if (o.only !== undefined) {
      // Replay one case, verbosely.
      const { stream, index } = o.only;
      if (stream === 'http' || peerRoutes !== undefined) {
        const c = generateCase(stream === 'http' ? genHttp('http') : genPeer('peer'), index);
        log(describeCase(c));
        const outs = await sendHttp(c, stream === 'http' ? http : peer, stream, true);
        log(`answer: ${JSON.stringify(outs)}`);
      } else {
        const c = generateFrameCase(o.seed, 'peer', index, frameTargets);
        log(`frame case ${index}: node ${c.node}, ${c.label}`);
        await runFrame('peer', index);
        log(`outcome: ${JSON.stringify(peer.byOutcome)}`);
      }
      await checkNodes('after the case');
    } else {
      const before = await target.snapshot();
      const termsBefore = await target.raftTerms?.();
      // Warm-up: a fifth of the run (300 to 2,000 cases of each stream) before the baseline, so that the
      // nodes' memory has grown towards its working size (buffers for 1 MiB bodies, JIT code, pools).
      const warm = o.warmup ?? Math.min(2000, Math.max(300, Math.floor(Math.max(o.count, o.frames) / 5)));
      await Promise.all([
        pool(concurrency, 0, warm, (i) => runHttp(genHttp('warmup-http'), i, http, 'http', false)),
        pool(concurrency, 0, warm, (i) => runPeer('warmup-peer', i, false)),
      ]);
      await sleep(1500);
      const baseline = target.nodes.map((n) => rssOf(n.pid()) ?? 0);
      const peak = [...baseline];
      log(
        `${o.mode}: seed ${o.seed}; baseline RSS ${baseline.map((b) => (b / MiB).toFixed(1)).join(' / ')} MiB; sending ${o.count} HTTP requests and ${o.frames} ${peerKind === 'tcp-frames' ? 'peer frames' : 'internal requests'}`,
      );
      let stateOk = isDeepStrictEqual(await target.snapshot(), before);
      if (!stateOk) fail({ kind: 'state', detail: 'the state changed during the warm-up' });
      const total = Math.max(o.count, o.frames);
      for (let from = 0; from < total && stateOk; from += batch) {
        const to = from + batch;
        leaderIndex = await target.leader().catch(() => leaderIndex);
        await Promise.all([
          pool(concurrency, Math.min(from, o.count), Math.min(to, o.count), (i) =>
            runHttp(genHttp('http'), i, http, 'http'),
          ),
          pool(concurrency, Math.min(from, o.frames), Math.min(to, o.frames), (i) => runPeer('peer', i)),
        ]);
        target.nodes.forEach((n, i) => {
          peak[i] = Math.max(peak[i] as number, rssOf(n.pid()) ?? 0);
        });
        const alive = await checkNodes(`after cases ${from}..${to - 1}`);
        const now = await target.snapshot().catch((e: Error) => ({ error: e.message }));
        if (!isDeepStrictEqual(now, before)) {
          stateOk = false;
          fail({
            kind: 'state',
            detail: `state changed in cases ${from}..${to - 1} (both streams)\n  before: ${JSON.stringify(before).slice(0, 1500)}\n  after: ${JSON.stringify(now).slice(0, 1500)}`,
          });
        }
        log(
          `${o.mode}: ${Math.min(to, o.count)} HTTP, ${Math.min(to, o.frames)} peer; 5xx ${http.fiveXX + peer.fiveXX}; failures ${Object.values(failureCounts).reduce((a, b) => a + b, 0)}; RSS ${target.nodes.map((n) => ((rssOf(n.pid()) ?? 0) / MiB).toFixed(1)).join(' / ')} MiB`,
        );
        if (!alive) break;
      }
      await client.close();
      // Idle: V8 gives memory back on its own schedule (its memory reducer runs once allocation has been
      // low for a few seconds), so poll until every node is within the tolerance or the idle time is up.
      const limits = baseline.map((base) => base + Math.max(memTol.mib * MiB, memTol.ratio * base));
      const idleUntil = Date.now() + (o.idleMs ?? 20_000);
      const ends = target.nodes.map((n) => rssOf(n.pid()) ?? 0);
      for (;;) {
        target.nodes.forEach((n, i) => {
          ends[i] = rssOf(n.pid()) ?? 0;
        });
        if (ends.every((e, i) => e > 0 && e <= (limits[i] as number)) || Date.now() >= idleUntil) break;
        await sleep(1000);
      }
      log(
        `${o.mode}: RSS after ${((Date.now() - idleUntil + (o.idleMs ?? 20_000)) / 1000).toFixed(0)} s idle ${ends.map((e) => (e / MiB).toFixed(1)).join(' / ')} MiB`,
      );
      const memory: MemoryReport[] = target.nodes.map((n, i) => {
        const base = baseline[i] as number;
        const end = ends[i] as number;
        const limit = limits[i] as number;
        return {
          node: i,
          pid: n.pid(),
          baselineMiB: round(base / MiB),
          peakMiB: round(Math.max(peak[i] as number, end) / MiB),
          endMiB: round(end / MiB),
          limitMiB: round(limit / MiB),
          ok: end > 0 && end <= limit,
        };
      });
      for (const m of memory) {
        if (!m.ok)
          fail({
            kind: 'memory',
            detail: `node ${m.node}: RSS ${m.endMiB} MiB after idle, baseline ${m.baselineMiB} MiB, limit ${m.limitMiB} MiB (peak ${m.peakMiB})`,
          });
      }
      await checkNodes('at the end');
      const after = await target.snapshot().catch((e: Error) => ({ error: e.message }));
      if (stateOk && !isDeepStrictEqual(after, before)) {
        stateOk = false;
        fail({
          kind: 'state',
          detail: `state changed after the run\n  before: ${JSON.stringify(before).slice(0, 1500)}\n  after: ${JSON.stringify(after).slice(0, 1500)}`,
        });
      }
      const termsAfter = await target.raftTerms?.();
      const total5xx = http.fiveXX + peer.fiveXX;
      return {
        mode: o.mode,
        seed: o.seed,
        http,
        peer,
        peerKind,
        failures,
        failureCounts,
        stateUnchanged: stateOk,
        memory,
        ...(termsBefore === undefined ? {} : { terms: { before: termsBefore, after: termsAfter } }),
        durationMs: Date.now() - t0,
        ok: Object.keys(failureCounts).length === 0 && total5xx === 0 && stateOk,
      };
    }
  } finally {
    await client.close();
    await target.stop();
  }
  return {
    mode: o.mode,
    seed: o.seed,
    http,
    peer,
    peerKind,
    failures,
    failureCounts,
    stateUnchanged: true,
    memory: [],
    durationMs: Date.now() - t0,
    ok: Object.keys(failureCounts).length === 0,
  };
}

/**
 * Answers that come before any handler: peer authentication's 401, the router's 404, and the HTTP layer's
 * own refusals of a malformed request (a 400 with Fastify's client-error body or none, 408, 414, 417, 431,
 * 505). A request that needs a credential and has none must get one of these.
 */
export function answeredBeforeHandlers(status: number, body: string): boolean {
  // An empty body: a HEAD answer, or the HTTP layer's own (possibly an empty chunked body).
  const empty = body.trim() === '' || body.trim() === '0';
  if (status === 401) return empty || body.includes('Peer credential required');
  if (status === 404) return empty || body.includes('Not found');
  if ([408, 414, 417, 431, 505].includes(status)) return true;
  return status === 400 && (empty || body.includes('"Client Error"') || body.includes('FST_ERR_BAD_URL'));
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

/** A short human summary of a report. */
export function summarize(r: ModeReport): string {
  const mem = r.memory
    .map((m) => `n${m.node} ${m.baselineMiB}→${m.endMiB} MiB (peak ${m.peakMiB}, limit ${m.limitMiB})`)
    .join('; ');
  const statuses = (s: StreamReport) =>
    Object.entries(s.byStatus)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}:${v}`)
      .join(' ');
  const outcomes = (s: StreamReport) =>
    Object.entries(s.byOutcome)
      .map(([k, v]) => `${k}:${v}`)
      .join(' ');
  return [
    `${r.mode} (seed ${r.seed}) ${r.ok ? 'OK' : 'FAILED'} in ${(r.durationMs / 1000).toFixed(1)} s`,
    `  HTTP: ${r.http.cases} cases, ${r.http.requests} requests (${r.http.raw} raw); statuses ${statuses(r.http)}; 5xx ${r.http.fiveXX}; accepted ${r.http.accepted}; timeouts ${r.http.timeouts}; errors ${r.http.errors}; connections ${outcomes(r.http)}`,
    `  ${r.peerKind === 'tcp-frames' ? 'peer frames' : 'internal HTTP'}: ${r.peer.cases} cases; ${r.peerKind === 'tcp-frames' ? `outcomes ${outcomes(r.peer)}` : `statuses ${statuses(r.peer)}; 5xx ${r.peer.fiveXX}; accepted ${r.peer.accepted}; connections ${outcomes(r.peer)}`}; timeouts ${r.peer.timeouts}; errors ${r.peer.errors}`,
    `  state unchanged: ${r.stateUnchanged}; memory: ${mem}`,
    ...(r.terms === undefined
      ? []
      : [`  raft terms before/after: ${JSON.stringify(r.terms.before)} / ${JSON.stringify(r.terms.after)}`]),
    ...(Object.keys(r.failureCounts).length === 0 ? [] : [`  failures: ${JSON.stringify(r.failureCounts)}`]),
  ].join('\n');
}
