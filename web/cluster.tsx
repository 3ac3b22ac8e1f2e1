/** The cluster map (nodes, roles, links up or down, who leads), the node table with its buttons, and the mode panel. */
import type { Convergence, NodeSummary, Obj, Summary } from './types.js';
import { arr, nodeName, num, obj, roleOf, str } from './types.js';

type Link = 'up' | 'down' | 'cut' | 'unknown';

function peerEntry(n: NodeSummary, other: NodeSummary): Obj | undefined {
  const oid = other.status?.id;
  for (const p of arr(n.status?.peers)) {
    const e = obj(p);
    if (typeof oid === 'number' && e.id === oid) return e;
    if (typeof e.url === 'string' && e.url.replace(/\/$/, '') === other.url) return e;
    if (typeof e.address === 'string' && other.url.endsWith(`//${e.address}`)) return e;
  }
  return undefined;
}

/** What `a` reports about its link to `b`. */
function linkSide(mode: string, a: NodeSummary, b: NodeSummary): Link {
  if (!a.ok) return 'unknown';
  if (mode === 'raft') {
    const bid = b.status?.id;
    if (typeof bid === 'number' && arr(a.status?.dropped_peers).includes(bid)) return 'cut';
  }
  const e = peerEntry(a, b);
  if (e === undefined) return 'unknown';
  if (mode === 'raft') return e.connected === true ? 'up' : 'down';
  if (mode === 'causal') {
    if (e.partitioned === true) return 'cut';
    return num(e.consecutive_failures) === 0 ? 'up' : 'down';
  }
  const state = str(e.state);
  if (state === undefined || state === 'unknown') return 'unknown';
  return state === 'down' || state === 'failed' ? 'down' : 'up';
}

export function linkState(mode: string, a: NodeSummary, b: NodeSummary): Link {
  if (!a.ok || !b.ok) return 'down';
  const x = linkSide(mode, a, b);
  const y = linkSide(mode, b, a);
  if (x === 'cut' || y === 'cut') return 'cut';
  if (x === 'down' || y === 'down') return 'down';
  if (x === 'up' || y === 'up') return 'up';
  return 'unknown';
}

/** Pairs of nodes that talk to each other in this mode (quorum: the leader and each follower). */
function pairs(s: Summary): [NodeSummary, NodeSummary][] {
  const out: [NodeSummary, NodeSummary][] = [];
  const ns = s.nodes;
  for (let i = 0; i < ns.length; i++) {
    for (let j = i + 1; j < ns.length; j++) {
      const a = ns[i] as NodeSummary;
      const b = ns[j] as NodeSummary;
      if (s.mode === 'quorum' && roleOf(a) !== 'leader' && roleOf(b) !== 'leader') continue;
      out.push([a, b]);
    }
  }
  return out;
}

const ROLE_COLOR: Record<string, string> = {
  leader: '#f59e0b',
  follower: '#3b82f6',
  candidate: '#a855f7',
  'pre-candidate': '#a855f7',
  replica: '#10b981',
  down: '#9ca3af',
};

/** A name that fits in a circle: a causal address by its port, a long name cut. */
function shortName(name: string): string {
  if (name.length <= 9) return name;
  const port = /:(\d+)$/.exec(name);
  return port === null ? `${name.slice(0, 8)}…` : `:${port[1]}`;
}

export function ClusterMap(p: { readonly summary: Summary }) {
  const s = p.summary;
  const n = s.nodes.length;
  const size = 320;
  const r = n <= 1 ? 0 : 110;
  const pos = new Map(
    s.nodes.map((node, i) => {
      const a = (2 * Math.PI * i) / Math.max(1, n) - Math.PI / 2;
      return [node.url, { x: size / 2 + r * Math.cos(a), y: size / 2 + r * Math.sin(a) }];
    }),
  );
  return (
    <svg class="map" viewBox={`0 0 ${size} ${size}`} data-testid="cluster-map">
      {pairs(s).map(([a, b]) => {
        const pa = pos.get(a.url) as { x: number; y: number };
        const pb = pos.get(b.url) as { x: number; y: number };
        const st = linkState(s.mode, a, b);
        return (
          <line
            key={`${a.url}-${b.url}`}
            x1={pa.x}
            y1={pa.y}
            x2={pb.x}
            y2={pb.y}
            class={`link link-${st}`}
            data-link={st}
          >
            <title>{`${nodeName(a)} ↔ ${nodeName(b)}: ${st}`}</title>
          </line>
        );
      })}
      {s.nodes.map((node) => {
        const q = pos.get(node.url) as { x: number; y: number };
        const role = roleOf(node);
        const paused = node.supervisor?.state === 'paused';
        return (
          <g key={node.url} transform={`translate(${q.x},${q.y})`}>
            <circle
              r={role === 'leader' ? 30 : 26}
              fill={ROLE_COLOR[role] ?? '#64748b'}
              class={paused ? 'paused' : ''}
            />
            <text y={-2} text-anchor="middle" class="node-label">
              {shortName(nodeName(node))}
            </text>
            <text y={13} text-anchor="middle" class="node-role">
              {paused ? 'paused' : role}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

export type Act = (action: string, node: string) => void;

function cells(s: Summary, node: NodeSummary): (string | number)[] {
  const st = node.status ?? {};
  const x = node.extra ?? {};
  if (!node.ok) return [node.error ?? 'no answer'];
  if (s.mode === 'raft') {
    const maxCommit = Math.max(...s.nodes.map((m) => num(m.status?.commit) ?? 0));
    const applied = num(st.applied) ?? 0;
    return [
      str(st.state) ?? '',
      num(st.term) ?? '',
      num(st.commit) ?? '',
      applied,
      maxCommit - applied,
      st.leader === null || st.leader === undefined ? 'none' : `node ${String(st.leader)}`,
    ];
  }
  if (s.mode === 'quorum') {
    const leader = s.nodes.find((m) => roleOf(m) === 'leader');
    const lv = num(leader?.extra?.version_sum);
    const v = num(x.version_sum) ?? 0;
    return [str(st.state) ?? '', num(st.keys) ?? '', v, lv === undefined ? '?' : lv - v];
  }
  if (s.mode === 'causal') {
    return [
      st.failed === true ? 'failed' : st.ready === true ? 'serving' : 'joining',
      num(st.keys) ?? '',
      JSON.stringify(st.vector_clock ?? {}),
      arr(st.view).length,
      num(st.pending_writes) ?? 0,
    ];
  }
  const ae = obj(st.anti_entropy);
  return [
    str(st.state) ?? '',
    num(st.keys) ?? '',
    num(st.tombstones) ?? 0,
    `${num(ae.rounds_ok) ?? 0} / ${num(ae.rounds_failed) ?? 0}`,
  ];
}

const HEADERS: Record<string, string[]> = {
  raft: ['state', 'term', 'commit', 'applied', 'lag', 'leader'],
  quorum: ['state', 'keys', 'versions', 'lag'],
  causal: ['state', 'keys', 'vector clock', 'view', 'pending'],
  eventual: ['state', 'keys', 'tombstones', 'anti-entropy ok / failed'],
};

export function NodeTable(p: { readonly summary: Summary; readonly act: Act; readonly busy: boolean }) {
  const s = p.summary;
  const heads = HEADERS[s.mode] ?? [];
  const btn = (action: string, node: NodeSummary, label = action) => (
    <button data-action={action} data-node={node.url} disabled={p.busy} onClick={() => p.act(action, node.url)}>
      {label}
    </button>
  );
  return (
    <table class="nodes" data-testid="nodes">
      <thead>
        <tr>
          <th>node</th>
          <th>role</th>
          {heads.map((h) => (
            <th key={h}>{h}</th>
          ))}
          <th>ops/s</th>
          <th>process</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {s.nodes.map((node) => {
          const last = node.ops?.[node.ops.length - 1];
          const sup = node.supervisor;
          const c = cells(s, node);
          return (
            <tr key={node.url} data-node={node.url} data-role={roleOf(node)} class={node.ok ? '' : 'down'}>
              <td>
                <a href={`${node.url}/ui`}>{nodeName(node)}</a>
                {node.url === s.self ? ' (this page)' : ''}
                <div class="muted">{node.url}</div>
              </td>
              <td class={`role role-${roleOf(node)}`}>{roleOf(node)}</td>
              {node.ok ? c.map((v, i) => <td key={i}>{v}</td>) : <td colSpan={heads.length}>{c[0]}</td>}
              <td>{last?.ops ?? ''}</td>
              <td>{sup === undefined ? '-' : `${sup.state}${sup.pid === null ? '' : ` (pid ${sup.pid})`}`}</td>
              <td class="actions">
                {s.supervised ? (
                  <>
                    {btn('kill', node)}
                    {sup?.state === 'paused' ? btn('resume', node) : btn('pause', node)}
                    {sup?.state === 'stopped' ? btn('start', node) : null}
                  </>
                ) : null}
                {btn('partition', node)}
                {btn('heal', node)}
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function RaftPanel(p: { readonly summary: Summary }) {
  const leader = p.summary.nodes.find((n) => roleOf(n) === 'leader');
  if (leader === undefined) return <p class="warn">No leader: an election is under way, or no majority is up.</p>;
  const st = leader.status ?? {};
  return (
    <>
      <p>
        Leader <b>{nodeName(leader)}</b>, term {num(st.term)}, commit {num(st.commit)}. Replication progress as the
        leader sees it:
      </p>
      <table class="small">
        <thead>
          <tr>
            <th>peer</th>
            <th>link</th>
            <th>match</th>
            <th>next</th>
            <th>state</th>
            <th>behind</th>
          </tr>
        </thead>
        <tbody>
          {arr(st.peers).map((x) => {
            const e = obj(x);
            const match = num(e.match);
            return (
              <tr key={String(e.id)}>
                <td>node {String(e.id)}</td>
                <td>{e.connected === true ? 'up' : 'down'}</td>
                <td>{match ?? '-'}</td>
                <td>{num(e.next) ?? '-'}</td>
                <td>{str(e.state) ?? '-'}</td>
                <td>{match === undefined ? '-' : (num(st.last_index) ?? 0) - match}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </>
  );
}

function QuorumPanel(p: { readonly summary: Summary }) {
  const leader = p.summary.nodes.find((n) => roleOf(n) === 'leader');
  const st = leader?.status ?? {};
  const lv = num(leader?.extra?.version_sum);
  return (
    <>
      <p>
        Write quorum <b>W = {num(st.write_quorum) ?? '?'}</b> of {arr(st.peers).length} followers; simulated link delay{' '}
        {num(st.min_delay)}–{num(st.max_delay)} ms. A follower's versions are the sum of its keys' versions: the lag is
        how many writes it misses.
      </p>
      <table class="small">
        <thead>
          <tr>
            <th>follower</th>
            <th>link (leader's view)</th>
            <th>acked</th>
            <th>missed keys</th>
            <th>versions</th>
            <th>lag</th>
          </tr>
        </thead>
        <tbody>
          {arr(st.peers).map((x) => {
            const e = obj(x);
            const url = str(e.url) ?? '';
            const f = p.summary.nodes.find((n) => n.url === url.replace(/\/$/, ''));
            const v = num(f?.extra?.version_sum);
            return (
              <tr key={url}>
                <td>{f === undefined ? url : nodeName(f)}</td>
                <td>{str(e.state) ?? '-'}</td>
                <td>{num(e.acked) ?? '-'}</td>
                <td>{num(e.missed_keys) ?? 0}</td>
                <td>{v ?? '-'}</td>
                <td>{v === undefined || lv === undefined ? '-' : lv - v}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </>
  );
}

function CausalPanel(p: { readonly summary: Summary }) {
  const ns = p.summary.nodes;
  const addrs = [...new Set(ns.flatMap((n) => Object.keys(obj(n.status?.vector_clock))))].sort();
  return (
    <>
      <p>Each replica's vector clock (writes it has delivered from each origin) and its view.</p>
      <table class="small">
        <thead>
          <tr>
            <th>replica</th>
            {addrs.map((a) => (
              <th key={a}>{a}</th>
            ))}
            <th>view</th>
          </tr>
        </thead>
        <tbody>
          {ns.map((n) => {
            const vc = obj(n.status?.vector_clock);
            return (
              <tr key={n.url}>
                <td>{nodeName(n)}</td>
                {addrs.map((a) => (
                  <td key={a}>{num(vc[a]) ?? 0}</td>
                ))}
                <td>{arr(n.status?.view).map(String).join(', ')}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </>
  );
}

function EventualPanel(p: { readonly summary: Summary; readonly c: Convergence | undefined }) {
  const c = p.c;
  if (c === undefined) return null;
  const ns = p.summary.nodes.filter((n) => n.ok);
  return (
    <>
      <p data-testid="convergence">
        {c.count === 0
          ? `Converged: the ${c.compared} replicas that answered hold the same keys and timestamps.`
          : `${c.count} key(s) differ between the ${c.compared} replicas that answered (anti-entropy repairs them):`}
      </p>
      {c.count > 0 ? (
        <table class="small">
          <thead>
            <tr>
              <th>key</th>
              {ns.map((n) => (
                <th key={n.url}>{nodeName(n)}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {c.keys.map((k) => (
              <tr key={k.key}>
                <td>{k.key}</td>
                {ns.map((n) => (
                  <td key={n.url}>{k.values[n.url] ?? 'missing'}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
    </>
  );
}

export function ModePanel(p: { readonly summary: Summary }) {
  const s = p.summary;
  const title = { raft: 'Replication', quorum: 'Quorum', causal: 'Vector clocks and view', eventual: 'Convergence' }[
    s.mode
  ];
  return (
    <section class="panel" data-testid="mode-panel">
      <h2>{title}</h2>
      {s.mode === 'raft' ? <RaftPanel summary={s} /> : null}
      {s.mode === 'quorum' ? <QuorumPanel summary={s} /> : null}
      {s.mode === 'causal' ? <CausalPanel summary={s} /> : null}
      {s.mode === 'eventual' ? <EventualPanel summary={s} c={s.convergence} /> : null}
    </section>
  );
}
