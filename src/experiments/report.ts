/** The experiment report: results/report.html (inline SVG charts) and results/SUMMARY.md, from the raw results. */
import type { ExperimentConfig } from './config.js';
import type { FailoverTrial, NodeCountPoint, QuorumPoint, ScalePoint, StrategyPoint } from './run.js';
import { barChart, escapeXml, lineChart, type Series } from './svg.js';
import { median } from '../bench/histogram.js';

export interface ExperimentMeta {
  readonly config: ExperimentConfig;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationS: number;
  /** `git rev-parse --short HEAD` of the tree that ran (absent when unknown, and in older runs). */
  readonly commit?: string;
  readonly host: {
    readonly cpus: number;
    readonly loadAvgBefore: readonly number[];
    /** Absent in runs made before it was recorded. */
    readonly loadAvgAfter?: readonly number[];
    readonly node: string;
    readonly platform: string;
  };
}

export interface ExperimentResults {
  readonly meta: ExperimentMeta;
  readonly quorum: readonly QuorumPoint[];
  readonly strategies: { readonly points: readonly StrategyPoint[]; readonly skipped: readonly string[] };
  readonly scale: readonly ScalePoint[];
  readonly failover: readonly FailoverTrial[];
  /** (e) Absent in runs made before it existed. */
  readonly nodeCount?: readonly NodeCountPoint[];
}

const ms = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
const pct = (v: number): string => `${(v * 100).toFixed(1)}%`;
const pctTick = (v: number): string => `${+(v * 100).toPrecision(3)}%`;

function quorumCharts(r: ExperimentResults): string[] {
  const delays = [...new Set(r.quorum.map((p) => p.delay))];
  const ws = [...new Set(r.quorum.map((p) => p.writeQuorum))].sort((a, b) => a - b);
  const lat: Series[] = delays.flatMap((d) => {
    const pts = r.quorum.filter((p) => p.delay === d);
    return [
      { name: `p50, ${d}`, points: pts.map((p) => [p.writeQuorum, p.put.p50Ms] as const) },
      { name: `p99, ${d}`, points: pts.map((p) => [p.writeQuorum, p.put.p99Ms] as const) },
    ];
  });
  const stale: Series[] = delays.map((d) => ({
    name: `delay ${d}`,
    points: r.quorum.filter((p) => p.delay === d).map((p) => [p.writeQuorum, p.staleness.fraction] as const),
  }));
  return [
    lineChart({
      title: 'Quorum mode: write latency vs write quorum W',
      xLabel: 'write quorum W (followers that must ack)',
      yLabel: 'put latency, ms (log)',
      series: lat,
      xTicks: ws,
      yLog: true,
    }),
    lineChart({
      title: 'Quorum mode: stale reads vs write quorum W',
      xLabel: 'write quorum W',
      yLabel: 'stale-read fraction',
      series: stale,
      xTicks: ws,
      yFormat: pctTick,
    }),
  ];
}

function strategyCharts(r: ExperimentResults): string[] {
  const pts = r.strategies.points;
  const cats = pts.map((p) => p.strategy);
  return [
    barChart({
      title: 'Throughput by strategy (same closed-loop load)',
      yLabel: 'ops/s',
      categories: cats,
      series: [{ name: 'throughput', values: pts.map((p) => p.throughput) }],
    }),
    barChart({
      title: 'Latency by strategy',
      yLabel: 'ms (log)',
      yLog: true,
      categories: cats,
      series: [
        { name: 'put p50', values: pts.map((p) => p.put.p50Ms) },
        { name: 'put p99', values: pts.map((p) => p.put.p99Ms) },
        { name: 'get p50', values: pts.map((p) => p.get.p50Ms) },
        { name: 'get p99', values: pts.map((p) => p.get.p99Ms) },
      ],
    }),
    barChart({
      title: 'Stale reads by strategy',
      yLabel: 'stale-read fraction',
      categories: cats,
      yFormat: pctTick,
      series: [{ name: 'stale reads', values: pts.map((p) => p.staleness.fraction) }],
    }),
  ];
}

function scaleCharts(r: ExperimentResults): string[] {
  const xs = r.scale.map((p) => p.clients);
  return [
    lineChart({
      title: 'Raft: throughput vs clients',
      xLabel: 'closed-loop clients (log)',
      yLabel: 'ops/s',
      xLog: true,
      xTicks: xs,
      series: [{ name: 'throughput', points: r.scale.map((p) => [p.clients, p.throughput] as const) }],
    }),
    lineChart({
      title: 'Raft: latency vs clients',
      xLabel: 'closed-loop clients (log)',
      yLabel: 'ms (log)',
      xLog: true,
      yLog: true,
      xTicks: xs,
      series: [
        { name: 'put p50', points: r.scale.map((p) => [p.clients, p.put.p50Ms] as const) },
        { name: 'put p99', points: r.scale.map((p) => [p.clients, p.put.p99Ms] as const) },
        { name: 'get p50', points: r.scale.map((p) => [p.clients, p.get.p50Ms] as const) },
        { name: 'get p99', points: r.scale.map((p) => [p.clients, p.get.p99Ms] as const) },
      ],
    }),
  ];
}

function failoverChart(r: ExperimentResults): string {
  return barChart({
    title: 'Raft: write unavailability after killing the leader',
    yLabel: 'ms',
    categories: r.failover.map((t) => `trial ${t.trial}`),
    series: [
      { name: 'kill → first ack of a new write', values: r.failover.map((t) => t.unavailableMs ?? Number.NaN) },
      { name: 'longest gap between acks', values: r.failover.map((t) => t.longestGapMs) },
    ],
  });
}

/** One series per (operation, client count) of the node-count experiment, y from `f`. */
function nodeCountSeries(pts: readonly NodeCountPoint[], f: (p: NodeCountPoint) => number | undefined): Series[] {
  const keys = [...new Set(pts.map((p) => `${p.op}|${p.clients}`))];
  return keys.map((k) => {
    const [op, clients] = k.split('|') as [string, string];
    const mine = pts.filter((p) => p.op === op && String(p.clients) === clients);
    return {
      name: `${op === 'get' ? 'linearizable get' : 'put'}, ${clients} client${clients === '1' ? '' : 's'}`,
      points: mine.map((p) => [p.nodes, f(p) ?? Number.NaN] as const),
    };
  });
}

/** The latency summary of the operation a node-count point measured. */
const opLatency = (p: NodeCountPoint) => (p.op === 'put' ? p.put : p.get);

function nodeCountCharts(pts: readonly NodeCountPoint[]): string[] {
  const xs = [...new Set(pts.map((p) => p.nodes))].sort((a, b) => a - b);
  const hasCpu = pts.some((p) => p.leaderCpuMsPerOp !== undefined);
  return [
    lineChart({
      title: 'Raft: throughput vs cluster size',
      xLabel: 'nodes',
      yLabel: 'ops/s (log)',
      yLog: true,
      xTicks: xs,
      series: nodeCountSeries(pts, (p) => p.throughput),
    }),
    lineChart({
      title: 'Raft: median latency vs cluster size',
      xLabel: 'nodes',
      yLabel: 'p50 ms (log)',
      yLog: true,
      xTicks: xs,
      series: nodeCountSeries(pts, (p) => opLatency(p).p50Ms),
    }),
    lineChart({
      title: 'Raft: p99 latency vs cluster size',
      xLabel: 'nodes',
      yLabel: 'p99 ms (log)',
      yLog: true,
      xTicks: xs,
      series: nodeCountSeries(pts, (p) => opLatency(p).p99Ms),
    }),
    ...(hasCpu
      ? [
          lineChart({
            title: 'Raft: leader CPU per operation vs cluster size',
            xLabel: 'nodes',
            yLabel: 'leader CPU ms per op',
            xTicks: xs,
            series: nodeCountSeries(pts, (p) => p.leaderCpuMsPerOp),
          }),
        ]
      : []),
  ];
}

const cpuMs = (v: number | undefined): string => (v === undefined ? 'n/a' : v.toFixed(3));

function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const th = head.map((h) => `<th>${escapeXml(h)}</th>`).join('');
  const tr = rows.map((r) => `<tr>${r.map((c) => `<td>${escapeXml(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${tr}\n</tbody></table>`;
}

const pointRow = (
  label: string,
  p: {
    throughput: number;
    put: { p50Ms: number; p99Ms: number };
    get: { p50Ms: number; p99Ms: number };
    staleness: { fraction: number; meanVersionsBehind: number };
    errors: number;
  },
): string[] => [
  label,
  p.throughput.toFixed(0),
  ms(p.put.p50Ms),
  ms(p.put.p99Ms),
  ms(p.get.p50Ms),
  ms(p.get.p99Ms),
  pct(p.staleness.fraction),
  p.staleness.meanVersionsBehind.toFixed(2),
  String(p.errors),
];
const POINT_HEAD = [
  '',
  'ops/s',
  'put p50 ms',
  'put p99 ms',
  'get p50 ms',
  'get p99 ms',
  'stale reads',
  'versions behind (stale)',
  'errors',
];

export function failoverMedian(r: ExperimentResults): number | undefined {
  return median(r.failover.flatMap((t) => (t.unavailableMs === undefined ? [] : [t.unavailableMs])));
}

export function renderHtml(r: ExperimentResults): string {
  const c = r.meta.config;
  const fo = failoverMedian(r);
  const sections = [
    `<h1>quorumkv — replication strategies compared</h1>`,
    `<p class="meta">Run ${escapeXml(r.meta.startedAt)} → ${escapeXml(r.meta.finishedAt)} (${r.meta.durationS.toFixed(0)} s), configuration <b>${c.name}</b>${r.meta.commit === undefined ? '' : `, commit ${escapeXml(r.meta.commit)}`}, ${r.meta.host.cpus} CPUs, load average (1/5/15 min) before ${r.meta.host.loadAvgBefore.map((x) => x.toFixed(2)).join(' / ')}${r.meta.host.loadAvgAfter !== undefined ? `, after ${r.meta.host.loadAvgAfter.map((x) => x.toFixed(2)).join(' / ')}` : ''}, Node ${escapeXml(r.meta.host.node)}. Every node is a separate process on 127.0.0.1, sharing the CPUs with the load generator; each point is ${c.pointMs / 1000} s measured after ${c.warmupMs / 1000} s of warm-up; ${c.keys} keys, ${c.valueSize}-byte values, ${Math.round(c.putRatio * 100)}% puts. A read is <i>stale</i> when it returns a version older than the newest write of that key acknowledged before the read was sent; reads are spread over all nodes.</p>`,
    `<h2>(a) Quorum mode: the write quorum W</h2>`,
    `<p>Leader plus ${c.quorumFollowers} followers, ${c.quorumClients} closed-loop clients; writes go to the leader, reads to every node. The leader answers after W followers acknowledged, each replication message delayed uniformly in the given range.</p>`,
    ...quorumCharts(r),
    table(
      ['W, delay', ...POINT_HEAD.slice(1)],
      r.quorum.map((p) => pointRow(p.label, p)),
    ),
    `<h2>(b) Strategies side by side</h2>`,
    `<p>${c.strategyClients} closed-loop clients per strategy. Raft: 3 nodes, disk storage, writes to the leader. Quorum: leader + ${c.quorumFollowers} followers, delay 0.1–1 ms. Causal and eventual: 3 replicas, writes and reads on any replica.${r.strategies.skipped.length > 0 ? ` Skipped: ${escapeXml(r.strategies.skipped.join(', '))}.` : ''}</p>`,
    ...strategyCharts(r),
    table(
      ['strategy', ...POINT_HEAD.slice(1)],
      r.strategies.points.map((p) => pointRow(p.strategy, p)),
    ),
    `<h2>(c) Raft as clients grow</h2>`,
    `<p>One 3-node cluster, linearizable reads (ReadIndex), ${Math.round(c.putRatio * 100)}% puts.</p>`,
    ...scaleCharts(r),
    table(
      ['clients', ...POINT_HEAD.slice(1)],
      r.scale.map((p) => pointRow(String(p.clients), p)),
    ),
    `<h2>(d) Raft unavailability after killing the leader</h2>`,
    `<p>${c.failoverClients} writers spread over the 3 nodes (followers forward); the leader is SIGKILLed ${c.failoverKillAtMs} ms into each trial and restarted afterwards. Unavailability: from the kill to the first acknowledgement of a write sent after it. Median over ${r.failover.length} trial(s): <b>${fo === undefined ? 'n/a' : `${fo.toFixed(0)} ms`}</b>.</p>`,
    failoverChart(r),
    table(
      ['trial', 'killed', 'new leader', 'unavailable ms', 'longest gap ms', 'ok writes', 'failed writes'],
      r.failover.map((t) => [
        String(t.trial),
        String(t.killedNode),
        String(t.newLeader ?? '-'),
        t.unavailableMs === undefined ? 'whole window' : t.unavailableMs.toFixed(0),
        t.longestGapMs.toFixed(0),
        String(t.okWrites),
        String(t.failedWrites),
      ]),
    ),
    ...(r.nodeCount === undefined || r.nodeCount.length === 0
      ? []
      : [
          `<h2>(e) Raft as the cluster grows</h2>`,
          `<p>${c.nodeCounts.join(', ')} nodes (disk storage), each point ${c.nodeCountPointMs / 1000} s measured after a short warm-up: puts only (sent to the leader), then linearizable gets only (spread over every node: a follower asks the leader for a read index, and every read index costs the leader a heartbeat round to a majority). Leader CPU per op: the leader process's user + system CPU time during the point over the operations acknowledged; cluster CPU: the same for every node process together. The load generator shares the CPUs.</p>`,
          ...nodeCountCharts(r.nodeCount),
          table(
            ['nodes, op, clients', 'ops/s', 'p50 ms', 'p99 ms', 'leader CPU ms/op', 'cluster CPU ms/op', 'errors'],
            r.nodeCount.map((p) => [
              p.label,
              p.throughput.toFixed(0),
              ms(opLatency(p).p50Ms),
              ms(opLatency(p).p99Ms),
              cpuMs(p.leaderCpuMsPerOp),
              cpuMs(p.clusterCpuMsPerOp),
              String(p.errors),
            ]),
          ),
        ]),
    `<p class="meta">Raw data: quorum-write-quorum.json, strategies.json, raft-scale.json, raft-failover.json${r.nodeCount === undefined ? '' : ', raft-node-count.json'}, meta.json next to this file.</p>`,
  ];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>quorumkv experiments</title>
<style>
body{font-family:sans-serif;max-width:1400px;margin:24px auto;padding:0 16px;color:#222}
svg{display:inline-block;margin:8px 8px 8px 0;border:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0 24px;font-size:13px}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}
.meta{color:#555;font-size:13px}
</style></head><body>
${sections.join('\n')}
</body></html>
`;
}

export function renderSummary(r: ExperimentResults): string {
  const c = r.meta.config;
  const lines = [
    '# Experiment summary',
    '',
    `Generated by \`npm run experiments\` (configuration \`${c.name}\`${r.meta.commit === undefined ? '' : `, commit ${r.meta.commit}`}) on ${r.meta.finishedAt}, ${r.meta.host.cpus} shared CPUs (load average ${r.meta.host.loadAvgBefore[0].toFixed(1)} before, ${r.meta.host.loadAvgAfter?.[0].toFixed(1) ?? 'n/a'} after); the charts are in [report.html](report.html), the raw data in the JSON files next to it. Every figure below comes from that run.`,
    '',
    '## (a) Quorum mode, write quorum W',
    '',
    '| W | delay | put p50 ms | put p99 ms | stale reads |',
    '|---|---|---|---|---|',
    ...r.quorum.map(
      (p) =>
        `| ${p.writeQuorum} | ${p.delay} | ${ms(p.put.p50Ms)} | ${ms(p.put.p99Ms)} | ${pct(p.staleness.fraction)} |`,
    ),
    '',
    '## (b) Strategies under the same load',
    '',
    '| strategy | ops/s | put p50 / p99 ms | get p50 / p99 ms | stale reads |',
    '|---|---|---|---|---|',
    ...r.strategies.points.map(
      (p) =>
        `| ${p.strategy} | ${p.throughput.toFixed(0)} | ${ms(p.put.p50Ms)} / ${ms(p.put.p99Ms)} | ${ms(p.get.p50Ms)} / ${ms(p.get.p99Ms)} | ${pct(p.staleness.fraction)} |`,
    ),
    ...(r.strategies.skipped.length > 0 ? ['', `Skipped: ${r.strategies.skipped.join(', ')}.`] : []),
    '',
    '## (c) Raft as clients grow',
    '',
    '| clients | ops/s | put p50 / p99 ms | get p50 / p99 ms |',
    '|---|---|---|---|',
    ...r.scale.map(
      (p) =>
        `| ${p.clients} | ${p.throughput.toFixed(0)} | ${ms(p.put.p50Ms)} / ${ms(p.put.p99Ms)} | ${ms(p.get.p50Ms)} / ${ms(p.get.p99Ms)} |`,
    ),
    '',
    '## (d) Raft leader kill',
    '',
    `Write unavailability (kill → first acknowledged new write) over ${r.failover.length} trial(s): ${r.failover.map((t) => (t.unavailableMs === undefined ? 'none in window' : `${t.unavailableMs.toFixed(0)} ms`)).join(', ')}; median ${failoverMedian(r)?.toFixed(0) ?? 'n/a'} ms.`,
    '',
    ...(r.nodeCount === undefined || r.nodeCount.length === 0
      ? []
      : [
          '## (e) Raft as the cluster grows',
          '',
          'Puts only (to the leader), then linearizable gets only (spread over every node).',
          '',
          '| nodes | op | clients | ops/s | p50 / p99 ms | leader CPU ms/op | cluster CPU ms/op |',
          '|---|---|---|---|---|---|---|',
          ...r.nodeCount.map(
            (p) =>
              `| ${p.nodes} | ${p.op} | ${p.clients} | ${p.throughput.toFixed(0)} | ${ms(opLatency(p).p50Ms)} / ${ms(opLatency(p).p99Ms)} | ${cpuMs(p.leaderCpuMsPerOp)} | ${cpuMs(p.clusterCpuMsPerOp)} |`,
          ),
          '',
        ]),
  ];
  return lines.join('\n');
}
