/**
 * WAL checkpoints of the chat database, off the node's main thread. With SQLite's automatic checkpoint the
 * commit that crosses the threshold copies the WAL into the database and fsyncs it, on the event loop that
 * also serves requests and replication. Here the state machine's connection never checkpoints
 * (`wal_autocheckpoint = 0`); a worker thread with its own connection runs passive checkpoints (which never
 * block the writer) every `intervalMs`.
 *
 * Before the database file is replaced (a snapshot is installed) the main thread closes the worker's
 * connection synchronously (`pause`), then reopens it (`resume`).
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

interface WorkerInput {
  readonly file: string;
  readonly intervalMs: number;
  /** [0]: 0 = running, 1 = closed (set by the worker once its connection is closed). */
  readonly state: Int32Array;
}

type Command = { readonly kind: 'pause' } | { readonly kind: 'resume' } | { readonly kind: 'stop' };

const PAUSE_WAIT_MS = 10_000;

export class Checkpointer {
  private readonly worker: Worker;
  private readonly state = new Int32Array(new SharedArrayBuffer(4));
  private stopped = false;

  constructor(file: string, intervalMs = 250) {
    const input: WorkerInput = { file, intervalMs, state: this.state };
    this.worker = new Worker(new URL(import.meta.url), { workerData: input });
    this.worker.unref();
    this.worker.on('error', () => undefined);
  }

  /** Closes the worker's connection and waits (blocking, bounded) until it is closed. */
  pause(): void {
    if (this.stopped) return;
    Atomics.store(this.state, 0, 0);
    this.worker.postMessage({ kind: 'pause' } satisfies Command);
    Atomics.wait(this.state, 0, 0, PAUSE_WAIT_MS);
  }

  resume(): void {
    if (this.stopped) return;
    this.worker.postMessage({ kind: 'resume' } satisfies Command);
  }

  /** Closes the worker's connection (synchronously) and ends the thread. */
  stop(): void {
    if (this.stopped) return;
    this.pause();
    this.stopped = true;
    this.worker.postMessage({ kind: 'stop' } satisfies Command);
  }
}

function runWorker(input: WorkerInput): void {
  let db: Database.Database | undefined;
  const open = () => {
    try {
      db = new Database(input.file, { fileMustExist: true });
      db.pragma('synchronous = NORMAL');
      db.pragma('busy_timeout = 100');
    } catch {
      db = undefined; // retried at the next tick
    }
  };
  let paused = false;
  open();
  const timer = setInterval(() => {
    if (paused) return;
    if (db === undefined) open();
    try {
      db?.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // Busy or the file is being replaced: the next tick tries again.
    }
  }, input.intervalMs);
  parentPort?.on('message', (c: Command) => {
    if (c.kind === 'pause' || c.kind === 'stop') {
      paused = true;
      db?.close();
      db = undefined;
      Atomics.store(input.state, 0, 1);
      Atomics.notify(input.state, 0);
      if (c.kind === 'stop') {
        clearInterval(timer);
        parentPort?.close();
      }
    } else if (c.kind === 'resume') {
      paused = false;
      open();
    }
  });
}

if (!isMainThread && (workerData as { file?: unknown } | null)?.file !== undefined)
  runWorker(workerData as WorkerInput);
