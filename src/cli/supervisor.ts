/**
 * Pieces shared by the local cluster supervisors (`quorumkv cluster`, every mode and app):
 *
 * - `probePorts`: bind-probes every port a cluster will listen on before anything is spawned, so a second
 *   cluster on the same ports fails at once with the port named instead of looping on EADDRINUSE.
 * - `Backoff`: the restart delay of a node that died (0.5 s doubling to 10 s, reset once it stayed up).
 * - `ControlServer` and `<data>/supervisor.json`: how `quorumkv node stop|start|restart|pause|resume N`
 *   reaches a running supervisor. The file (mode 0600) holds the supervisor's pid, the nodes' pids and
 *   states, a loopback control URL and a random token the control requests must carry.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

/** The file a running raft supervisor describes itself in, in its data directory. */
export const SUPERVISOR_FILE = 'supervisor.json';

/** The supervisor file of a mode's cluster: `supervisor.json` for raft, `supervisor-<mode>.json` otherwise. */
export function supervisorFile(mode = 'raft'): string {
  return mode === 'raft' ? SUPERVISOR_FILE : `supervisor-${mode}.json`;
}

export interface PortUse {
  readonly port: number;
  /** What listens there, e.g. `node 2 HTTP`. */
  readonly what: string;
}

function bindable(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** The first of `ports` that cannot be bound on `host` now, if any. */
export async function probePorts(host: string, ports: readonly PortUse[]): Promise<PortUse | undefined> {
  for (const p of ports) if (!(await bindable(p.port, host))) return p;
  return undefined;
}

/** The one-line error for a port in use. */
export function portInUseMessage(p: PortUse): string {
  return `error: port ${p.port} (${p.what}) is in use — is another cluster running?`;
}

/** Whether a dead node's output says it could not listen because the address was taken. */
export function addressInUse(output: string): boolean {
  return /EADDRINUSE|address already in use/i.test(output);
}

export interface BackoffOptions {
  /** First delay in ms (default 500). */
  readonly initialMs?: number;
  /** Largest delay in ms (default 10 s). */
  readonly maxMs?: number;
  /** A node that stayed up this long starts again from the first delay (default 30 s). */
  readonly resetAfterMs?: number;
}

/** Restart delays of one node: doubling from `initialMs` to `maxMs`, reset after a long enough run. */
export class Backoff {
  private next: number;
  private readonly initial: number;
  private readonly max: number;
  private readonly resetAfter: number;

  constructor(o: BackoffOptions = {}) {
    this.initial = o.initialMs ?? 500;
    this.max = Math.max(this.initial, o.maxMs ?? 10_000);
    this.resetAfter = o.resetAfterMs ?? 30_000;
    this.next = this.initial;
  }

  /** The delay before restarting a node that ran for `uptimeMs`. */
  delay(uptimeMs: number): number {
    if (uptimeMs >= this.resetAfter) this.next = this.initial;
    const d = this.next;
    this.next = Math.min(this.max, this.next * 2);
    return d;
  }
}

export const fmtSeconds = (ms: number): string => `${Number((ms / 1000).toFixed(2))} s`;

/** How a node exited, as the supervisor logs it: the signal name or `code C`. */
export function exitText(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ?? `code ${code ?? '?'}`;
}

export type NodeAction = 'stop' | 'start' | 'restart' | 'pause' | 'resume' | 'kill';
export const NODE_ACTIONS: readonly NodeAction[] = ['stop', 'start', 'restart', 'pause', 'resume', 'kill'];

/** The environment variable that names the supervisor file to the nodes (their dashboards' buttons use it). */
export const SUPERVISOR_FILE_ENV = 'QKV_SUPERVISOR_FILE';

export interface SupervisedNode {
  readonly id: number;
  readonly pid: number | null;
  /** running, paused, stopped (by `node stop`), restarting (waiting for its backoff) or exited. */
  readonly state: string;
  readonly url: string;
}

export interface SupervisorInfo {
  readonly pid: number;
  readonly mode: string;
  readonly control: string;
  readonly token: string;
  readonly nodes: readonly SupervisedNode[];
}

/** What the control server asks the supervisor to do; resolves to a line for the operator or throws. */
export type ControlHandler = (action: NodeAction, id: number) => Promise<string>;

/**
 * The supervisor's control endpoint: `POST /nodes/<id>/<action>` on a loopback port, with the token in
 * `x-qkv-token`. Keeps `<data>/supervisor.json` up to date (`publish`) and removes it on `close`.
 */
export class ControlServer {
  private readonly token = randomBytes(16).toString('hex');
  private readonly server: http.Server;
  private url = '';

  private constructor(
    private readonly file: string,
    private readonly mode: string,
    handler: ControlHandler,
  ) {
    this.server = http.createServer((req, res) => {
      const send = (code: number, body: Record<string, unknown>): void => {
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const m = /^\/nodes\/(\d+)\/([a-z]+)$/.exec(req.url ?? '');
      req.resume();
      if (req.headers['x-qkv-token'] !== this.token) return send(403, { error: 'Bad token' });
      if (req.method !== 'POST' || m === null) return send(404, { error: 'Not found' });
      const action = m[2] as NodeAction;
      if (!NODE_ACTIONS.includes(action)) return send(404, { error: `Unknown action ${action}` });
      handler(action, Number(m[1])).then(
        (result) => send(200, { result }),
        (err: unknown) => send(409, { error: (err as Error).message }),
      );
    });
  }

  static async start(dataDir: string, mode: string, handler: ControlHandler): Promise<ControlServer> {
    const c = new ControlServer(path.join(dataDir, supervisorFile(mode)), mode, handler);
    await new Promise<void>((resolve, reject) => {
      c.server.once('error', reject);
      c.server.listen(0, '127.0.0.1', () => resolve());
    });
    const addr = c.server.address() as net.AddressInfo;
    c.url = `http://127.0.0.1:${addr.port}`;
    c.server.unref();
    return c;
  }

  /** Writes the supervisor file with the nodes as they are now. */
  publish(nodes: readonly SupervisedNode[]): void {
    const info: SupervisorInfo = { pid: process.pid, mode: this.mode, control: this.url, token: this.token, nodes };
    try {
      // Written aside and renamed, so a reader never sees a half-written file.
      const tmp = `${this.file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify(info, null, 2) + '\n', { mode: 0o600 });
      renameSync(tmp, this.file);
    } catch {
      // The data directory went away: the control endpoint still works for whoever has the token.
    }
  }

  async close(): Promise<void> {
    try {
      const cur = JSON.parse(readFileSync(this.file, 'utf8')) as Partial<SupervisorInfo>;
      if (cur.token === this.token) rmSync(this.file, { force: true });
    } catch {
      // gone already
    }
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The running supervisor of the cluster under `dataDir`; throws a readable error if there is none. */
export function readSupervisor(dataDir: string, mode = 'raft'): SupervisorInfo {
  const file = path.join(path.resolve(dataDir), supervisorFile(mode));
  let info: SupervisorInfo;
  try {
    info = JSON.parse(readFileSync(file, 'utf8')) as SupervisorInfo;
  } catch {
    const hint = mode === 'raft' ? 'give --data DIR, or --mode' : 'give --data DIR';
    throw new Error(`no running ${mode} cluster under ${path.resolve(dataDir)} (no ${supervisorFile(mode)}; ${hint})`);
  }
  if (typeof info.pid !== 'number' || !pidAlive(info.pid)) {
    throw new Error(`the cluster supervisor of ${path.resolve(dataDir)} (pid ${info.pid}) is not running`);
  }
  return info;
}

/** The supervisor running on `dataDir` (its file names a live pid other than this process), if any. */
export function runningSupervisor(dataDir: string, mode = 'raft'): SupervisorInfo | undefined {
  try {
    const info = readSupervisor(dataDir, mode);
    return info.pid === process.pid ? undefined : info;
  } catch {
    return undefined;
  }
}

/** Sends `action` for node `id` to the supervisor of `dataDir`; resolves to its answer line. */
export async function controlNode(dataDir: string, action: NodeAction, id: number, mode = 'raft'): Promise<string> {
  const info = readSupervisor(dataDir, mode);
  const res = await fetch(`${info.control}/nodes/${id}/${action}`, {
    method: 'POST',
    headers: { 'x-qkv-token': info.token },
    signal: AbortSignal.timeout(20_000),
  });
  const body = (await res.json()) as { result?: string; error?: string };
  if (res.status !== 200) throw new Error(body.error ?? `HTTP ${res.status}`);
  return body.result ?? 'ok';
}

export interface SupervisorIO {
  out(line: string): void;
  err(line: string): void;
}

export interface NodeLauncher {
  /** Starts node `id`; `output` gets each line it prints (the supervisor watches for EADDRINUSE). */
  launch(id: number, output: (line: string) => void): Promise<ChildProcess>;
  /** The node's URL, for the supervisor file. */
  url(id: number): string;
}

export interface NodeSupervisorOptions {
  /** Restart a node that dies on its own (default behaviour); false: a death ends the cluster. */
  readonly restart: boolean;
  readonly backoff?: BackoffOptions;
  /** Called once when the cluster must end (exit code 1): a death without restart, a port in use. */
  readonly onFatal: () => void;
  /** Called whenever a node's pid or state changes. */
  readonly onChange?: () => void;
}

interface Slot {
  readonly id: number;
  proc: ChildProcess | undefined;
  state: 'starting' | 'running' | 'paused' | 'stopped' | 'restarting' | 'exited';
  startedAt: number;
  timer: NodeJS.Timeout | undefined;
  readonly backoff: Backoff;
  tail: string;
  exited: Promise<void>;
}

const live = (p: ChildProcess | undefined): p is ChildProcess =>
  p !== undefined && p.exitCode === null && p.signalCode === null;

/**
 * Keeps the nodes of a local cluster running: logs a node that dies (pid, signal or exit code) and restarts
 * it with backoff (or ends the cluster without `restart`); never restarts a node that died because its port
 * was taken; carries out `node stop|start|restart|pause|resume`.
 */
export class NodeSupervisor {
  private readonly slots = new Map<number, Slot>();
  private stopping = false;

  constructor(
    ids: readonly number[],
    private readonly launcher: NodeLauncher,
    private readonly io: SupervisorIO,
    private readonly o: NodeSupervisorOptions,
  ) {
    for (const id of ids) {
      this.slots.set(id, {
        id,
        proc: undefined,
        state: 'exited',
        startedAt: 0,
        timer: undefined,
        backoff: new Backoff(o.backoff),
        tail: '',
        exited: Promise.resolve(),
      });
    }
  }

  /** The nodes as the supervisor file lists them. */
  nodes(): SupervisedNode[] {
    return [...this.slots.values()].map((s) => ({
      id: s.id,
      pid: live(s.proc) ? (s.proc.pid ?? null) : null,
      state: s.state,
      url: this.launcher.url(s.id),
    }));
  }

  pid(id: number): number | undefined {
    const s = this.slots.get(id);
    return live(s?.proc) ? s.proc.pid : undefined;
  }

  /** Takes over an already started child (the mode clusters start their nodes before supervision). */
  adopt(id: number, proc: ChildProcess): void {
    const s = this.slot(id);
    this.watch(s, proc);
    s.state = 'running';
    this.o.onChange?.();
  }

  /** Starts node `id` (resolves once spawned; a launch failure is handled like a death). */
  async start(id: number): Promise<void> {
    const s = this.slot(id);
    if (this.stopping) return;
    s.state = 'starting';
    s.tail = '';
    try {
      const proc = await this.launcher.launch(id, (line) => {
        s.tail = (s.tail + line + '\n').slice(-4000);
      });
      if (this.stopping) {
        if (live(proc)) proc.kill('SIGTERM');
        return;
      }
      this.watch(s, proc);
      s.state = 'running';
      this.o.onChange?.();
    } catch (err) {
      s.tail = (s.tail + (err as Error).message).slice(-4000);
      this.died(s, undefined, null, null);
    }
  }

  private slot(id: number): Slot {
    const s = this.slots.get(id);
    if (s === undefined) throw new Error(`no node ${id} (nodes: ${[...this.slots.keys()].join(', ')})`);
    return s;
  }

  private watch(s: Slot, proc: ChildProcess): void {
    s.proc = proc;
    s.startedAt = Date.now();
    s.exited = new Promise<void>((resolve) => {
      if (!live(proc)) {
        resolve();
        return;
      }
      proc.once('exit', (code, signal) => {
        resolve();
        if (s.proc === proc) this.died(s, proc, code, signal);
      });
    });
  }

  private died(s: Slot, proc: ChildProcess | undefined, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.stopping) return;
    if (s.state === 'stopped') {
      this.o.onChange?.();
      return; // stopped on request: stays down until `node start`
    }
    const who = `node ${s.id}${proc?.pid === undefined ? '' : ` (pid ${proc.pid})`}`;
    const how = proc === undefined ? 'could not start' : `exited (${exitText(code, signal)})`;
    if (addressInUse(s.tail)) {
      const port = /EADDRINUSE[^\d]*(?:[\w.:[\]]*:)?(\d{2,5})/.exec(s.tail)?.[1];
      this.io.err(
        `error: node ${s.id} cannot listen: ${port === undefined ? 'address' : `port ${port}`} is in use — ` +
          'is another cluster running? (not restarting it)',
      );
      s.state = 'exited';
      this.o.onFatal();
      return;
    }
    if (!this.o.restart) {
      this.io.err(`${who} ${how}; stopping the cluster (--no-restart)`);
      s.state = 'exited';
      this.o.onFatal();
      return;
    }
    const delay = s.backoff.delay(Date.now() - s.startedAt);
    this.io.err(`${who} ${how}; restarting in ${fmtSeconds(delay)}`);
    s.state = 'restarting';
    this.o.onChange?.();
    s.timer = setTimeout(() => {
      s.timer = undefined;
      if (this.stopping || s.state !== 'restarting') return;
      this.io.out(`restarting node ${s.id}`);
      void this.start(s.id);
    }, delay);
  }

  /** Carries out a `quorumkv node` request; resolves to a line for the operator, throws when it cannot. */
  async control(action: NodeAction, id: number): Promise<string> {
    if (this.stopping) throw new Error('the cluster is stopping');
    const s = this.slot(id);
    const pid = (): string => (live(s.proc) ? ` (pid ${s.proc.pid})` : '');
    switch (action) {
      case 'stop': {
        if (s.state === 'stopped') return `node ${id} is already stopped`;
        clearTimeout(s.timer);
        const was = pid();
        s.state = 'stopped';
        await this.terminate(s);
        this.io.out(`node ${id}${was} stopped on request; \`quorumkv node start ${id}\` starts it again`);
        this.o.onChange?.();
        return `node ${id} stopped`;
      }
      case 'start': {
        if (live(s.proc) && s.state !== 'stopped') return `node ${id} is already running${pid()}`;
        clearTimeout(s.timer);
        await this.start(id);
        this.io.out(`node ${id}${pid()} started on request`);
        return `node ${id} started${pid()}`;
      }
      case 'restart': {
        clearTimeout(s.timer);
        s.state = 'stopped';
        await this.terminate(s);
        await this.start(id);
        this.io.out(`node ${id}${pid()} restarted on request`);
        return `node ${id} restarted${pid()}`;
      }
      case 'kill': {
        // A crash: SIGKILL, then the usual restart with backoff (or the end of the cluster with --no-restart).
        if (!live(s.proc)) throw new Error(`node ${id} is not running (${s.state})`);
        const was = pid();
        s.proc.kill('SIGKILL');
        this.io.out(`node ${id}${was} killed (SIGKILL) on request`);
        return `node ${id}${was} killed`;
      }
      case 'pause':
      case 'resume': {
        if (!live(s.proc)) throw new Error(`node ${id} is not running (${s.state})`);
        s.proc.kill(action === 'pause' ? 'SIGSTOP' : 'SIGCONT');
        s.state = action === 'pause' ? 'paused' : 'running';
        this.io.out(`node ${id}${pid()} ${action === 'pause' ? 'paused (SIGSTOP)' : 'resumed (SIGCONT)'}`);
        this.o.onChange?.();
        return `node ${id} ${action === 'pause' ? 'paused' : 'resumed'}${pid()}`;
      }
    }
  }

  /** SIGTERM (SIGCONT first if paused), SIGKILL after `graceMs`; resolves once it exited. */
  private async terminate(s: Slot, graceMs = 10_000): Promise<void> {
    const proc = s.proc;
    if (!live(proc)) return;
    proc.kill('SIGCONT');
    proc.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (live(proc)) {
        this.io.err(`node ${s.id} did not stop in ${graceMs / 1000} s: killing pid ${proc.pid}`);
        proc.kill('SIGKILL');
      }
    }, graceMs);
    await s.exited;
    clearTimeout(timer);
  }

  /** Stops every node (no restarts from now on). */
  async stopAll(graceMs = 10_000): Promise<void> {
    this.stopping = true;
    for (const s of this.slots.values()) clearTimeout(s.timer);
    await Promise.all([...this.slots.values()].map((s) => this.terminate(s, graceMs)));
  }
}
