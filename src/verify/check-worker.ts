/**
 * Runs the linearizability check in a worker thread with a heap limit, so a search that blows up ends as
 * a reported "could not check" instead of taking the whole verify process down with an out-of-memory crash.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { checkLinearizable, type CheckResult, type HistoryEvent } from '../check/linearizability.js';

interface Job {
  readonly history: readonly HistoryEvent[];
  readonly timeoutMs: number;
}

export type WorkerCheckResult = CheckResult & { readonly error?: string };

export function checkInWorker(
  history: readonly HistoryEvent[],
  timeoutMs: number,
  heapMb = 2048,
): Promise<WorkerCheckResult> {
  return new Promise((resolve) => {
    const worker = new Worker(new URL(import.meta.url), {
      workerData: { history, timeoutMs } satisfies Job,
      resourceLimits: { maxOldGenerationSizeMb: heapMb },
    });
    let done = false;
    const invokes = history.filter((e) => e.type === 'invoke').length;
    const finish = (r: WorkerCheckResult) => {
      if (done) return;
      done = true;
      resolve(r);
    };
    worker.once('message', (r: CheckResult) => finish(r));
    worker.once('error', (err) =>
      finish({ ok: false, checkedOps: invokes, keys: 0, timedOut: true, error: `checker failed: ${err.message}` }),
    );
    worker.once('exit', (code) =>
      finish({ ok: false, checkedOps: invokes, keys: 0, timedOut: true, error: `checker exited with ${code}` }),
    );
  });
}

if (!isMainThread && parentPort !== null) {
  const job = workerData as Job;
  parentPort.postMessage(checkLinearizable(job.history, { timeoutMs: job.timeoutMs }));
}
