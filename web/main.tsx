/**
 * The quorumkv dashboard: a page every node serves at /ui. It reads one summary per second from the node's
 * `/ui/events` stream (the node gathers its peers' status while the page is open) and draws the cluster map,
 * the node table with its buttons, live charts, the mode's own panel and a key browser.
 */
import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import 'uplot/dist/uPlot.min.css';
import './app.css';
import { Chart, type Series } from './charts.js';
import { ClusterMap, ModePanel, NodeTable } from './cluster.js';
import { KeyBrowser } from './keys.js';
import { openStream } from './sse.js';
import { nodeName, roleOf, type SecondSample, type Summary } from './types.js';

const KEEP_SECONDS = 300;
const CREDENTIAL_KEY = 'quorumkv-credential';

function authHeaders(): Record<string, string> {
  const c = sessionStorage.getItem(CREDENTIAL_KEY) ?? '';
  if (c === '') return {};
  if (!c.includes(':')) return { authorization: `Bearer ${c}` };
  return { authorization: `Basic ${btoa(unescape(encodeURIComponent(c)))}` };
}

/** Merges a node's new samples into what the page holds, keeping the last minutes. */
function mergeSamples(old: readonly SecondSample[], add: readonly SecondSample[]): SecondSample[] {
  const byT = new Map(old.map((s) => [s.t, s]));
  for (const s of add) byT.set(s.t, s);
  const all = [...byT.values()].sort((a, b) => a.t - b.t);
  const newest = all[all.length - 1]?.t ?? 0;
  return all.filter((s) => s.t > newest - KEEP_SECONDS);
}

function Credential() {
  const [value, setValue] = useState(sessionStorage.getItem(CREDENTIAL_KEY) ?? '');
  return (
    <details class="credential">
      <summary>credential</summary>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          sessionStorage.setItem(CREDENTIAL_KEY, value);
          location.reload();
        }}
      >
        <input
          type="password"
          autocomplete="current-password"
          placeholder="user:password or token"
          value={value}
          onInput={(e) => setValue((e.target as HTMLInputElement).value)}
        />
        <button type="submit">Use</button>
        <span class="muted"> needed with auth on (raft --auth): root for the buttons, read/write for keys</span>
      </form>
    </details>
  );
}

function App() {
  const [summary, setSummary] = useState<Summary | undefined>(undefined);
  const [history, setHistory] = useState<ReadonlyMap<string, readonly SecondSample[]>>(new Map());
  const [conn, setConn] = useState<{ ok: boolean; error?: string }>({ ok: false });
  const [log, setLog] = useState<readonly string[]>([]);
  const [busy, setBusy] = useState(false);

  const note = (line: string) => setLog((l) => [`${new Date().toLocaleTimeString()} ${line}`, ...l].slice(0, 30));

  useEffect(
    () =>
      openStream('/ui/events', authHeaders, {
        onEvent(event, data) {
          if (event !== 'summary') return;
          const s = JSON.parse(data) as Summary;
          setSummary(s);
          setHistory((h) => {
            const next = new Map(h);
            for (const n of s.nodes) if (n.ops !== undefined) next.set(n.url, mergeSamples(h.get(n.url) ?? [], n.ops));
            return next;
          });
        },
        onState(ok, error) {
          setConn(error === undefined ? { ok } : { ok, error });
        },
      }),
    [],
  );

  const act = async (action: string, node: string) => {
    setBusy(true);
    try {
      const res = await fetch('/ui/control', {
        method: 'POST',
        headers: { ...authHeaders(), 'content-type': 'application/json' },
        body: JSON.stringify({ action, node }),
      });
      const body = (await res.json()) as { result?: string; error?: string };
      note(res.status === 200 ? (body.result ?? 'done') : `${action} ${node}: HTTP ${res.status} ${body.error ?? ''}`);
    } catch (err) {
      note(`${action} ${node}: ${String(err)}`);
    } finally {
      setBusy(false);
    }
  };

  const series: Series[] = useMemo(
    () =>
      (summary?.nodes ?? []).map((n) => ({
        name: nodeName(n),
        samples: history.get(n.url) ?? [],
      })),
    [summary, history],
  );

  if (summary === undefined) {
    return (
      <main>
        <h1>quorumkv</h1>
        <p>{conn.error === undefined ? 'Connecting to the node…' : `No summary yet: ${conn.error}`}</p>
        <Credential />
      </main>
    );
  }
  const leaders = summary.nodes.filter((n) => roleOf(n) === 'leader');
  return (
    <main>
      <header>
        <h1>quorumkv</h1>
        <span class="badge" data-testid="mode">
          {summary.mode}
          {summary.mode === 'raft' ? ` · ${summary.app}` : ''}
        </span>
        <span class="muted">
          served by {summary.self} · {new Date(summary.time).toLocaleTimeString()} ·{' '}
          <span class={conn.ok ? 'ok' : 'warn'}>{conn.ok ? 'live' : `reconnecting (${conn.error ?? ''})`}</span>
        </span>
        <span data-testid="leader" class="leader">
          {summary.mode === 'raft' || summary.mode === 'quorum'
            ? leaders.length === 1
              ? `leader: ${nodeName(leaders[0] as (typeof leaders)[number])}`
              : leaders.length === 0
                ? 'no leader'
                : `${leaders.length} nodes claim to lead`
            : `${summary.nodes.filter((n) => n.ok).length} of ${summary.nodes.length} replicas up`}
        </span>
        <Credential />
      </header>
      <section class="panel cluster">
        <ClusterMap summary={summary} />
        <div class="grow">
          <NodeTable summary={summary} act={(a, n) => void act(a, n)} busy={busy} />
          {summary.supervised ? null : (
            <p class="muted">
              No local supervisor runs this cluster: kill/pause/resume need `quorumkv cluster`. Partition and heal use
              the nodes' failure-simulation routes.
            </p>
          )}
          <ul class="log" data-testid="log">
            {log.map((l, i) => (
              <li key={i}>{l}</li>
            ))}
          </ul>
        </div>
      </section>
      <section class="panel charts">
        <Chart
          title="Client operations per second"
          unit="ops/s"
          series={series}
          measures={[{ label: '', pick: (s) => s.ops }]}
          testId="chart-ops"
        />
        <Chart
          title="Latency p50 (solid) and p99 (dashed)"
          unit="ms"
          series={series}
          measures={[
            { label: 'p50', pick: (s) => s.p50 },
            { label: 'p99', pick: (s) => s.p99, dash: [4, 4] },
          ]}
          testId="chart-latency"
        />
      </section>
      <ModePanel summary={summary} />
      {summary.app === 'chat' ? (
        <section class="panel">
          <h2>Keys</h2>
          <p class="muted">The chat app has rooms and messages, not keys: see `quorumkv chat`.</p>
        </section>
      ) : (
        <KeyBrowser mode={summary.mode} headers={authHeaders} />
      )}
    </main>
  );
}

const root = document.getElementById('app');
if (root !== null) {
  root.textContent = '';
  render(<App />, root);
}
