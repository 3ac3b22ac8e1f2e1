/** The key browser: list keys by prefix, get, put and delete one (through the node's /ui/keys and /ui/kv). */
import { useState } from 'preact/hooks';
import type { Json } from './types.js';

interface Row {
  readonly key: string;
  readonly value?: Json;
  readonly revision?: number;
  readonly version?: number;
  readonly timestamp?: Json;
}

/** A typed value: JSON when it parses, otherwise the text itself. */
function parseValue(text: string): Json {
  try {
    return JSON.parse(text) as Json;
  } catch {
    return text;
  }
}

export function KeyBrowser(p: { readonly mode: string; readonly headers: () => Record<string, string> }) {
  const [prefix, setPrefix] = useState('');
  const [rows, setRows] = useState<readonly Row[]>([]);
  const [listInfo, setListInfo] = useState('');
  const [key, setKey] = useState('');
  const [value, setValue] = useState('');
  const [result, setResult] = useState('');
  const raft = p.mode === 'raft';

  const list = async () => {
    try {
      const res = await fetch(`/ui/keys?${new URLSearchParams({ prefix, limit: '200' })}`, { headers: p.headers() });
      const body = (await res.json()) as { keys?: Row[]; more?: boolean; revision?: number; error?: string };
      if (res.status !== 200) {
        setListInfo(`HTTP ${res.status}: ${body.error ?? ''}`);
        return;
      }
      setRows(body.keys ?? []);
      const rev = body.revision === undefined ? '' : ` at revision ${body.revision}`;
      setListInfo(`${body.keys?.length ?? 0} key(s)${body.more === true ? ' (more follow)' : ''}${rev}`);
    } catch (err) {
      setListInfo(String(err));
    }
  };

  const run = async (method: 'GET' | 'PUT' | 'DELETE') => {
    if (key === '') {
      setResult('give a key');
      return;
    }
    const init: RequestInit = { method, headers: p.headers() };
    if (method === 'PUT') {
      init.headers = { ...p.headers(), 'content-type': 'application/json' };
      init.body = JSON.stringify({ value: parseValue(value) });
    }
    try {
      const res = await fetch(`/ui/kv/${encodeURIComponent(key)}`, init);
      const text = await res.text();
      setResult(`${method} ${key}: HTTP ${res.status} ${text}`);
      if (method === 'GET' && res.status === 200) {
        const body = JSON.parse(text) as { value?: Json };
        if (body.value !== undefined) setValue(JSON.stringify(body.value));
      }
      if (method !== 'GET' && res.status < 300) void list();
    } catch (err) {
      setResult(`${method} ${key}: ${String(err)}`);
    }
  };

  return (
    <section class="panel" data-testid="key-browser">
      <h2>Keys</h2>
      <div class="row">
        <input
          placeholder="prefix"
          value={prefix}
          data-testid="prefix"
          onInput={(e) => setPrefix((e.target as HTMLInputElement).value)}
        />
        <button data-testid="list" onClick={() => void list()}>
          List
        </button>
        <span class="muted">{listInfo}</span>
      </div>
      <div class="row">
        <input
          placeholder="key"
          value={key}
          data-testid="key"
          onInput={(e) => setKey((e.target as HTMLInputElement).value)}
        />
        <input
          placeholder="value (JSON or text)"
          class="wide"
          value={value}
          data-testid="value"
          onInput={(e) => setValue((e.target as HTMLInputElement).value)}
        />
        <button data-testid="get" onClick={() => void run('GET')}>
          Get
        </button>
        <button data-testid="put" onClick={() => void run('PUT')}>
          Put
        </button>
        <button data-testid="delete" onClick={() => void run('DELETE')}>
          Delete
        </button>
      </div>
      <pre class="result" data-testid="kv-result">
        {result}
      </pre>
      <table class="keys">
        <thead>
          <tr>
            <th>key</th>
            <th>value</th>
            {raft ? <th>revision</th> : null}
            <th>{p.mode === 'eventual' || p.mode === 'causal' ? 'timestamp' : 'version'}</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.key} onClick={() => setKey(r.key)}>
              <td>{r.key}</td>
              <td class="value">{JSON.stringify(r.value)}</td>
              {raft ? <td>{r.revision ?? ''}</td> : null}
              <td>
                {p.mode === 'eventual' || p.mode === 'causal' ? JSON.stringify(r.timestamp ?? null) : (r.version ?? '')}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
