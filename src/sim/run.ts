import { checkLinearizable } from '../check/linearizability.js';
import { majorityOf } from '../raft/quorum.js';
import { makeRng } from '../raft/rng.js';
import type { Message, NodeId, PlantedBug } from '../raft/types.js';
import { SimClient, type SimHistoryEvent } from './client.js';
import { SimHost, type ClientReply, type ClientRequest } from './host.js';
import { formatMessage } from './harness.js';
import { InvariantChecker } from './invariants.js';
import type { HostBug } from './planted-host.js';
import { CALM, SimNetwork } from './network.js';
import { EventQueue } from './queue.js';

export interface SimOptions {
  readonly seed: number;
  readonly nodes: 3 | 5 | 7;
  readonly clients?: number;
  /** Virtual milliseconds of the fault phase, then of the healed phase. */
  readonly faultMs?: number;
  readonly healedMs?: number;
  readonly plantedBugs?: readonly PlantedBug[];
  /** Bugs planted in the production host loop (see planted-host.ts). */
  readonly hostBugs?: readonly HostBug[];
  readonly trace?: boolean;
  /**
   * `mixed` (default) draws every fault kind at random; `leader-churn` strikes nearly every new leader
   * soon after it wins and sends one entry per append, the ground of the paper's Figure 8.
   */
  readonly profile?: 'mixed' | 'leader-churn';
}

export interface SimResult {
  readonly seed: number;
  readonly nodes: number;
  readonly violations: string[];
  readonly history: SimHistoryEvent[];
  readonly trace: string[];
  readonly ops: number;
  readonly unknownOps: number;
  readonly faults: Record<string, number>;
  readonly steps: number;
  readonly messages: number;
  /** Wall-clock milliseconds the linearizability check took. */
  readonly checkMs: number;
  readonly committed: number;
  readonly snapshots: number;
}

/**
 * One deterministic simulation: a cluster of real cores driven by the production host loop
 * (src/server/driver.ts) on a virtual clock, clients issuing concurrent
 * operations, a fault phase (lossy, slow, duplicating, reordering links; partitions of every shape; crashes
 * mid-write and restarts), then a healed phase in which every operation must complete (liveness).
 * Safety invariants are checked after every event; the history is returned for the linearizability check.
 */
export function runSimulation(opts: SimOptions): SimResult {
  const rng = makeRng(opts.seed);
  const faultMs = opts.faultMs ?? 2500;
  const healedMs = opts.healedMs ?? 2000;
  const ids: NodeId[] = Array.from({ length: opts.nodes }, (_, i) => i + 1);
  const quorum = majorityOf(opts.nodes);
  const queue = new EventQueue();
  const trace: string[] = [];
  const log = opts.trace ? (line: string) => trace.push(line) : null;
  const checker = new InvariantChecker(quorum, () => queue.now);
  const faults: Record<string, number> = {};
  const fault = (kind: string, detail: string) => {
    faults[kind] = (faults[kind] ?? 0) + 1;
    log?.(`${queue.now} FAULT ${kind} ${detail}`);
  };

  const hosts = new Map<NodeId, SimHost>();
  const net = new SimNetwork(queue, rng, (m: Message) => {
    if (log && ((m.type !== 'heartbeat' && m.type !== 'heartbeat-resp') || m.context)) {
      log(`${queue.now} ${formatMessage(m)}`);
    }
    hosts.get(m.to)?.receive(m);
  });
  const snapshotThreshold = 40 + Math.floor(rng() * 160);
  const churn = opts.profile === 'leader-churn';
  const oneEntryPerAppend = churn || rng() < 0.3;
  // How often faults strike: from every 20-120 ms to every 50-350 ms.
  const faultGap = rng() < 0.4 ? [20, 100] : [50, 300];
  for (const id of ids) {
    const host = new SimHost(id, ids, opts.seed, queue, (m) => net.send(m), checker, {
      tickInterval: 10,
      diskDelay: () => (rng() < 0.05 ? Math.floor(rng() * 30) : Math.floor(rng() * 3)),
      snapshotThreshold,
      snapshotKeep: () => Math.floor(rng() * 10),
      raft: {
        electionTick: 10,
        heartbeatTick: 1,
        // Some runs send one entry per append, which lets old entries reach a majority before new ones.
        maxSizePerMsg: oneEntryPerAppend ? 1 : 256 + Math.floor(rng() * 4096),
        maxInflightMsgs: 1 + Math.floor(rng() * 16),
        snapshotChunkSize: 256 + Math.floor(rng() * 4096),
        plantedBugs: opts.plantedBugs,
      },
      hostBugs: opts.hostBugs,
      trace: log,
    });
    hosts.set(id, host);
    host.start();
  }
  const hostList = [...hosts.values()];

  // Clients.
  const history: SimHistoryEvent[] = [];
  let processSeq = 0;
  const nClients = opts.clients ?? 3 + Math.floor(rng() * 4);
  const keys = ['a', 'b', 'c', 'd'].slice(0, 2 + Math.floor(rng() * 3));
  const sendToNode = (to: NodeId, req: ClientRequest, reply: (r: ClientReply) => void) =>
    hosts.get(to)?.handleClient(req, reply);
  const clients: SimClient[] = [];
  for (let i = 0; i < nClients; i++) {
    const c = new SimClient(`c${i}`, processSeq++, () => processSeq++, ids, queue, rng, sendToNode, history, {
      keys,
      attemptTimeout: 60,
      opDeadline: () => 200 + Math.floor(rng() * 400),
      thinkTime: () => Math.floor(rng() * 20),
      requestDelay: () => 1 + Math.floor(rng() * 2),
    });
    clients.push(c);
    c.start();
  }

  // The fault schedule.
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)];
  const shuffled = () => [...ids].sort(() => rng() - 0.5);
  const leaderId = () => [...hosts.values()].find((h) => h.up && h.node?.status().role === 'leader')?.id;
  const injectFault = () => {
    const r = rng();
    if (r < 0.15) {
      const s = shuffled();
      const k = 1 + Math.floor(rng() * (ids.length - 1));
      net.heal();
      net.partition(s.slice(0, k), s.slice(k));
      fault('partition', `${s.slice(0, k)} | ${s.slice(k)}`);
    } else if (r < 0.25) {
      const l = leaderId() ?? pick(ids);
      net.heal();
      net.partition(
        [l],
        ids.filter((x) => x !== l),
      );
      fault('isolate-leader', `${l}`);
    } else if (r < 0.32) {
      // Two halves that can only talk through one bridge node.
      const s = shuffled();
      const bridge = s[0];
      const half = 1 + Math.floor((s.length - 1) / 2);
      net.heal();
      net.partition(s.slice(1, half), s.slice(half));
      fault('bridge', `${bridge} joins ${s.slice(1, half)} and ${s.slice(half)}`);
    } else if (r < 0.4) {
      const from = pick(ids);
      const to = pick(ids.filter((x) => x !== from));
      net.cutLink(from, to);
      fault('one-way', `${from}->${to}`);
    } else if (r < 0.5) {
      net.heal();
      fault('heal', '');
    } else if (r < 0.6) {
      const up = [...hosts.values()].filter((h) => h.up);
      if (up.length > 0) {
        const h = rng() < 0.4 ? (hosts.get(leaderId() ?? 0) ?? pick(up)) : pick(up);
        h.crash(rng);
        fault('crash', `${h.id}`);
      }
    } else if (r < 0.7) {
      // A process restart: down for a moment only, coming back with whatever reached its disk.
      const up = [...hosts.values()].filter((h) => h.up);
      if (up.length > 0) {
        const h = pick(up);
        h.crash(rng);
        fault('crash-restart', `${h.id}`);
        queue.schedule(Math.floor(rng() * 30), () => {
          if (!h.up) h.start();
        });
      }
    } else if (r < 0.8) {
      const down = [...hosts.values()].filter((h) => !h.up);
      if (down.length > 0) {
        const h = pick(down);
        h.start();
        fault('restart', `${h.id}`);
      }
    } else {
      net.conditions = {
        loss: rng() < 0.5 ? rng() * 0.3 : 0,
        duplicate: rng() < 0.5 ? rng() * 0.2 : 0,
        minDelay: 1,
        maxDelay: 2 + Math.floor(rng() * 20),
        longDelayProb: rng() < 0.5 ? rng() * 0.1 : 0,
        longDelay: 50 + Math.floor(rng() * 200),
      };
      fault('link-conditions', JSON.stringify(net.conditions));
    }
  };
  const scheduleFaults = () => {
    queue.schedule(faultGap[0] + Math.floor(rng() * faultGap[1]), () => {
      if (queue.now >= faultMs) return;
      injectFault();
      scheduleFaults();
    });
  };
  scheduleFaults();

  // A nemesis that targets fresh leaders: cut off or crash a node soon after it wins, before its no-op
  // spreads. This makes the interleavings of the paper's Figure 8 common.
  const strikeNewLeaders = churn ? 0.9 : rng() < 0.5 ? 0.3 + rng() * 0.6 : 0;
  let lastLeaderTerm = 0;
  const watchLeaders = () => {
    if (strikeNewLeaders === 0 || queue.now >= faultMs) return;
    for (const h of hostList) {
      const n = h.node;
      if (!h.up || !n || n.currentRole !== 'leader' || n.currentTerm <= lastLeaderTerm) continue;
      lastLeaderTerm = n.currentTerm;
      if (rng() >= strikeNewLeaders) continue;
      const inc = h.crashes;
      // At once (before its first messages arrive) or a few round trips later. Under leader churn, the
      // leader's own-term entries may also be lost meanwhile, while its older entries get through.
      let delay = rng() < 0.5 ? 0 : Math.floor(rng() * (churn ? 30 : 8));
      if (churn && delay > 0 && rng() < 0.5) {
        const leader = h.id;
        const term = n.currentTerm;
        net.dropIf = (m) => m.from === leader && m.type === 'app' && (m.entries ?? []).some((e) => e.term === term);
        fault('lose-new-entries', `${leader} term ${term}`);
        delay += 10;
      }
      queue.schedule(delay, () => {
        net.dropIf = null;
        if (!h.up || h.crashes !== inc || queue.now >= faultMs) return;
        // The leader comes back shortly, so that the pattern can repeat many times in one run.
        const back = 10 + Math.floor(rng() * 150);
        if (rng() < 0.5) {
          h.crash(rng);
          fault('crash-new-leader', `${h.id}`);
          queue.schedule(back, () => {
            if (!h.up) h.start();
          });
        } else {
          net.heal();
          net.partition(
            [h.id],
            ids.filter((x) => x !== h.id),
          );
          fault('isolate-new-leader', `${h.id}`);
          queue.schedule(back, () => net.heal());
        }
      });
    }
  };
  const afterStep = () => {
    checker.afterStep(hostList);
    watchLeaders();
  };
  const violations: string[] = [];
  try {
    runPhases();
  } catch (e) {
    // A core assertion (or any exception) is a failure of the run like any violated invariant.
    violations.push(`exception at t=${queue.now}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  }

  function runPhases(): void {
    queue.runUntil(faultMs, afterStep);

    // Heal everything: links, conditions, crashed nodes. From now on every operation must complete.
    net.heal();
    net.conditions = { ...CALM };
    for (const h of hosts.values()) if (!h.up) h.start();
    log?.(`${queue.now} HEAL`);
    for (const c of clients) c.healedAt = queue.now;
    queue.runUntil(faultMs + healedMs, afterStep);
    for (const c of clients) c.stop();
    // Drain: until every client is idle and every replica has applied the same index (at most 5 s).
    const drainEnd = faultMs + healedMs + 5000;
    while (queue.now < drainEnd) {
      queue.runUntil(queue.now + 50, afterStep);
      const applied = hostList.map((h) => h.sm?.appliedIndex ?? -1);
      if (clients.every((c) => !c.busy) && applied.every((a) => a === applied[0])) break;
    }
  }

  violations.unshift(...checker.violations);
  for (const c of clients) {
    if (c.busy) violations.push(`liveness: a client operation was still pending 5 s after the run ended`);
    if (c.livenessFailures > 0) violations.push(`liveness: ${c.livenessFailures} operation(s) timed out after healing`);
  }
  violations.push(...convergence(hosts));
  const checkStart = performance.now();
  const lin = checkLinearizable(history, { timeoutMs: 20_000 });
  const checkMs = performance.now() - checkStart;
  if (lin.timedOut) violations.push('linearizability: the checker timed out (history not verified)');
  else if (!lin.ok) {
    const f = lin.failure;
    violations.push(`linearizability: key ${f?.key}: ${f?.explanation ?? 'not linearizable'}`);
  }

  return {
    seed: opts.seed,
    nodes: opts.nodes,
    violations,
    history,
    trace,
    ops: history.filter((e) => e.type !== 'invoke').length,
    unknownOps: history.filter((e) => e.type === 'info').length,
    faults,
    steps: queue.steps,
    messages: net.sent,
    checkMs,
    committed: checker.committedCount,
    snapshots: [...hosts.values()].reduce((n, h) => n + h.snapshots, 0),
  };
}

/** Once healed and quiet, every node must hold the same state machine. */
function convergence(hosts: Map<NodeId, SimHost>): string[] {
  const states = [...hosts.values()].map((h) => ({
    id: h.id,
    applied: h.sm?.appliedIndex ?? -1,
    data: JSON.stringify(h.sm?.list('', Number.MAX_SAFE_INTEGER) ?? null),
  }));
  const first = states[0];
  const out: string[] = [];
  for (const s of states.slice(1)) {
    if (s.data !== first.data) {
      out.push(
        `convergence: node ${s.id} (applied ${s.applied}) differs from node ${first.id} (applied ${first.applied})`,
      );
    }
  }
  return out;
}
