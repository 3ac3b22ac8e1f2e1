/**
 * Minimal SVG charts for the experiment report, drawn by hand (no chart library): line charts with linear or
 * log axes and grouped bar charts, each with axes, ticks, labels and a legend. Output is a self-contained
 * `<svg>` string.
 */

const W = 640;
const H = 360;
const M = { left: 70, right: 20, top: 40, bottom: 80 };
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Short number for a tick label. */
export function fmtTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  if (a >= 1) return `${+v.toPrecision(3)}`;
  return `${+v.toPrecision(2)}`;
}

/** About `n` round ticks covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

interface Axis {
  readonly lo: number;
  readonly hi: number;
  readonly log: boolean;
  readonly ticks: number[];
}

function axis(values: number[], log: boolean, zeroBased: boolean, ticks?: readonly number[]): Axis {
  const vs = values.filter((v) => Number.isFinite(v) && (!log || v > 0));
  let lo = vs.length > 0 ? Math.min(...vs) : 0;
  let hi = vs.length > 0 ? Math.max(...vs) : 1;
  if (log) {
    lo = 10 ** Math.floor(Math.log10(lo > 0 ? lo : 1));
    hi = 10 ** Math.ceil(Math.log10(hi > 0 ? hi : 1));
    if (hi <= lo) hi = lo * 10;
    const t: number[] = [];
    for (let v = lo; v <= hi * 1.0001; v *= 10) t.push(v);
    return { lo, hi, log, ticks: ticks !== undefined ? [...ticks] : t };
  }
  if (zeroBased) lo = Math.min(0, lo);
  if (hi === lo) hi = lo + 1;
  const t = ticks !== undefined ? [...ticks] : niceTicks(lo, hi * 1.05);
  return { lo, hi: Math.max(hi, t[t.length - 1] ?? hi), log, ticks: t };
}

function scale(a: Axis, v: number, from: number, to: number): number {
  const f = a.log
    ? (Math.log10(v) - Math.log10(a.lo)) / (Math.log10(a.hi) - Math.log10(a.lo))
    : (v - a.lo) / (a.hi - a.lo);
  return from + f * (to - from);
}

function frame(title: string, xLabel: string, yLabel: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
    ...body,
    `<text x="${(M.left + W - M.right) / 2}" y="${H - 44}" text-anchor="middle">${escapeXml(xLabel)}</text>`,
    `<text transform="translate(16 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">${escapeXml(yLabel)}</text>`,
    '</svg>',
  ].join('\n');
}

function yAxis(y: Axis, fmt: (v: number) => string): string[] {
  const out: string[] = [];
  for (const t of y.ticks) {
    const py = scale(y, t, H - M.bottom, M.top);
    out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${py.toFixed(1)}" y2="${py.toFixed(1)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${M.left - 6}" y="${(py + 4).toFixed(1)}" text-anchor="end">${escapeXml(fmt(t))}</text>`);
  }
  out.push(`<line x1="${M.left}" x2="${M.left}" y1="${M.top}" y2="${H - M.bottom}" stroke="black"/>`);
  out.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${H - M.bottom}" y2="${H - M.bottom}" stroke="black"/>`);
  return out;
}

function legend(names: readonly string[]): string[] {
  const out: string[] = [];
  let x = M.left;
  const y = H - 18;
  names.forEach((n, i) => {
    out.push(`<rect x="${x}" y="${y - 9}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`);
    out.push(`<text x="${x + 16}" y="${y + 1}">${escapeXml(n)}</text>`);
    x += 28 + n.length * 6.5;
  });
  return out;
}

export interface Series {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
}

export interface LineChartOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  readonly xLog?: boolean;
  readonly yLog?: boolean;
  /** Fixed x ticks (e.g. the write quorums, the client counts). */
  readonly xTicks?: readonly number[];
  readonly yFormat?: (v: number) => string;
}

export function lineChart(o: LineChartOptions): string {
  const xs = o.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = o.series.flatMap((s) => s.points.map((p) => p[1]));
  const x = axis(xs, o.xLog === true, false, o.xTicks);
  const xa: Axis = o.xLog === true ? x : { ...x, lo: Math.min(...x.ticks, ...xs), hi: Math.max(...x.ticks, ...xs) };
  const y = axis(ys, o.yLog === true, true);
  const fmt = o.yFormat ?? fmtTick;
  const body = yAxis(y, fmt);
  for (const t of xa.ticks) {
    const px = xa.hi === xa.lo ? (M.left + W - M.right) / 2 : scale(xa, t, M.left + 10, W - M.right - 10);
    body.push(
      `<line x1="${px.toFixed(1)}" x2="${px.toFixed(1)}" y1="${H - M.bottom}" y2="${H - M.bottom + 5}" stroke="black"/>`,
    );
    body.push(
      `<text x="${px.toFixed(1)}" y="${H - M.bottom + 18}" text-anchor="middle">${escapeXml(fmtTick(t))}</text>`,
    );
  }
  o.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = s.points
      .filter((p) => Number.isFinite(p[1]) && (o.yLog !== true || p[1] > 0))
      .map(
        (p) =>
          [
            xa.hi === xa.lo ? (M.left + W - M.right) / 2 : scale(xa, p[0], M.left + 10, W - M.right - 10),
            scale(y, p[1], H - M.bottom, M.top),
          ] as const,
      );
    if (pts.length > 1) {
      body.push(
        `<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join(' ')}"/>`,
      );
    }
    for (const [px, py] of pts)
      body.push(`<circle cx="${px.toFixed(1)}" cy="${py.toFixed(1)}" r="3.5" fill="${color}"/>`);
  });
  body.push(...legend(o.series.map((s) => s.name)));
  return frame(o.title, o.xLabel, o.yLabel, body);
}

export interface BarChartOptions {
  readonly title: string;
  readonly yLabel: string;
  readonly categories: readonly string[];
  readonly series: readonly { readonly name: string; readonly values: readonly number[] }[];
  readonly yLog?: boolean;
  readonly yFormat?: (v: number) => string;
}

export function barChart(o: BarChartOptions): string {
  const ys = o.series.flatMap((s) => s.values);
  const y = axis(ys, o.yLog === true, true);
  const fmt = o.yFormat ?? fmtTick;
  const body = yAxis(y, fmt);
  const n = Math.max(1, o.categories.length);
  const groupW = (W - M.left - M.right) / n;
  const barW = (groupW * 0.8) / Math.max(1, o.series.length);
  const base = H - M.bottom;
  o.categories.forEach((c, ci) => {
    const gx = M.left + ci * groupW + groupW * 0.1;
    o.series.forEach((s, si) => {
      const v = s.values[ci];
      if (!Number.isFinite(v) || (o.yLog === true && v <= 0)) return;
      const top = scale(y, v, base, M.top);
      const h = Math.max(0, (o.yLog === true ? base : scale(y, Math.max(0, y.lo), base, M.top)) - top);
      body.push(
        `<rect x="${(gx + si * barW).toFixed(1)}" y="${top.toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[si % COLORS.length]}"><title>${escapeXml(`${c} — ${s.name}: ${fmt(v)}`)}</title></rect>`,
      );
    });
    body.push(
      `<text x="${(gx + groupW * 0.4).toFixed(1)}" y="${base + 18}" text-anchor="middle">${escapeXml(c)}</text>`,
    );
  });
  if (o.series.length > 1 || o.series[0]?.name !== '') body.push(...legend(o.series.map((s) => s.name)));
  return frame(o.title, '', o.yLabel, body);
}
