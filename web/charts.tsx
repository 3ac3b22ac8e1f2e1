/** Live charts (uPlot): operations per second and p50/p99 latency of each node over the last minutes. */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import type { SecondSample } from './types.js';

export const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];

export interface Series {
  readonly name: string;
  readonly samples: readonly SecondSample[];
}

type Pick = (s: SecondSample) => number | null;

interface ChartProps {
  readonly title: string;
  readonly unit: string;
  readonly series: readonly Series[];
  /** One line per (node, measure). */
  readonly measures: readonly { readonly label: string; readonly pick: Pick; readonly dash?: number[] }[];
  readonly testId: string;
}

/** Aligned columns for uPlot: the union of seconds, then one column per (node, measure). */
function columns(series: readonly Series[], measures: ChartProps['measures']): uPlot.AlignedData {
  const times = new Set<number>();
  for (const s of series) for (const x of s.samples) times.add(x.t);
  const xs = [...times].sort((a, b) => a - b);
  const out: (number | null)[][] = [];
  for (const s of series) {
    const byT = new Map(s.samples.map((x) => [x.t, x]));
    for (const m of measures) out.push(xs.map((t) => (byT.has(t) ? m.pick(byT.get(t) as SecondSample) : null)));
  }
  return [xs, ...out] as uPlot.AlignedData;
}

export function Chart(p: ChartProps) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = p.series.map((s) => s.name).join('|') + '#' + p.measures.map((m) => m.label).join('|');

  useEffect(() => {
    const el = host.current;
    if (el === null) return;
    const opts: uPlot.Options = {
      width: Math.max(320, el.clientWidth),
      height: 200,
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [{}, { label: p.unit, size: 60 }],
      legend: { live: false },
      series: [
        {},
        ...p.series.flatMap((s, i) =>
          p.measures.map((m) => ({
            label: `${s.name}${m.label === '' ? '' : ` ${m.label}`}`,
            stroke: COLORS[i % COLORS.length],
            width: 1.5,
            spanGaps: false,
            // Isolated seconds (an operation now and then) show as dots.
            points: { show: true, size: 3 },
            ...(m.dash === undefined ? {} : { dash: m.dash }),
          })),
        ),
      ],
    };
    const u = new uPlot(opts, columns(p.series, p.measures), el);
    plot.current = u;
    const resize = () => u.setSize({ width: Math.max(320, el.clientWidth), height: 200 });
    window.addEventListener('resize', resize);
    return () => {
      window.removeEventListener('resize', resize);
      u.destroy();
      plot.current = null;
    };
    // Re-created only when the nodes or measures change; data updates go through setData.
  }, [shape]);

  useEffect(() => {
    plot.current?.setData(columns(p.series, p.measures));
  });

  return (
    <div class="chart" data-testid={p.testId}>
      <h3>{p.title}</h3>
      <div ref={host} />
    </div>
  );
}
