/**
 * The dashboard in a real browser: playwright-core drives Debian's chromium (never a downloaded browser).
 * A 3-node raft cluster runs under its supervisor (`quorumkv cluster`, so the kill button works): the page
 * shows three nodes and one leader; "kill" on the leader brings a new leader within 5 s; a key put through
 * the key browser is read back with `quorumkv get`. The same page then loads for the quorum, causal and
 * eventual modes. Screenshots go to test-results/ (git-ignored). Without chromium the test is skipped, saying
 * so (.ci/run installs it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium, type Browser, type Page } from 'playwright-core';
import { freeNodePortRun } from '../../src/net/ports.js';

/** The little of the DOM the page functions below use (they run in the browser; this project has no DOM lib). */
interface PageElement {
  getAttribute(name: string): string | null;
  readonly textContent: string | null;
}
declare const document: {
  querySelectorAll(selector: string): ArrayLike<PageElement> & Iterable<PageElement>;
  querySelector(selector: string): PageElement | null;
};

const CHROMIUM = process.env.QKV_CHROMIUM ?? '/usr/bin/chromium';
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const RESULTS = path.resolve(fileURLToPath(new URL('../../../test-results/', import.meta.url)));
const run = promisify(execFile);

interface Cluster {
  readonly child: ChildProcess;
  readonly urls: readonly string[];
  readonly dir: string;
  output(): string;
  stop(): Promise<void>;
}

/** `quorumkv cluster` as a child process on free ports; resolves once it says it is ready. */
async function startCluster(mode: string): Promise<Cluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `quorumkv-ui-${mode}-`));
  const base = await freeNodePortRun(3);
  const args = ['cluster', '--data', dir, '--base-http-port', String(base)];
  if (mode === 'raft') args.push('--base-peer-port', String(await freeNodePortRun(3)));
  else args.push('--mode', mode, '--nodes', '3');
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // Should this process end before the test stops it, the supervisor still stops its nodes.
  const onExit = () => child.kill('SIGTERM');
  process.once('exit', onExit);
  void exited.then(() => process.off('exit', onExit));
  const urls = [0, 1, 2].map((i) => `http://127.0.0.1:${base + i}`);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 45_000;
  while (!/ready|serving on/.test(out) || !(await allUp(urls))) {
    if (Date.now() > deadline || child.exitCode !== null) {
      await stop();
      throw new Error(`the ${mode} cluster did not start:\n${out.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { child, urls, dir, output: () => out, stop };
}

async function allUp(urls: readonly string[]): Promise<boolean> {
  const ok = await Promise.all(
    urls.map((u) =>
      fetch(`${u}/status`, { signal: AbortSignal.timeout(1000) })
        .then((r) => r.status === 200)
        .catch(() => false),
    ),
  );
  return ok.every(Boolean);
}

async function leaderOf(urls: readonly string[]): Promise<string | undefined> {
  for (const u of urls) {
    try {
      const s = (await (await fetch(`${u}/status`, { signal: AbortSignal.timeout(1000) })).json()) as {
        role?: string;
      };
      if (s.role === 'leader') return u;
    } catch {
      // down
    }
  }
  return undefined;
}

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(RESULTS, { recursive: true });
  await page.screenshot({ path: path.join(RESULTS, name), fullPage: true });
}

test('the dashboard in chromium: kill the leader, see a new one, put a key; every mode loads', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.skip(
      `SKIPPED: no chromium at ${CHROMIUM} — install Debian's (apt-get install -y chromium; .ci/run does) ` +
        'or set QKV_CHROMIUM; the browser test did not run',
    );
    return;
  }
  let browser: Browser | undefined;
  const clusters: Cluster[] = [];
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    const raft = await startCluster('raft');
    clusters.push(raft);
    let leader: string | undefined;
    const until = Date.now() + 10_000;
    while ((leader = await leaderOf(raft.urls)) === undefined && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(leader !== undefined, 'the raft cluster elected a leader');
    // The page is served by a follower, so that it stays up while the leader is killed.
    const pageNode = raft.urls.find((u) => u !== leader) as string;
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${pageNode}/ui`);
    // Three nodes, one of them the leader the nodes report (a loaded machine may take a while to draw it).
    await page.waitForFunction(
      (l) =>
        document.querySelectorAll('tr[data-node]').length === 3 &&
        document.querySelectorAll('tr[data-role="leader"]').length === 1 &&
        document.querySelector('tr[data-role="leader"]')?.getAttribute('data-node') === l,
      leader,
      { timeout: 20_000 },
    );
    assert.equal(await page.locator('tr[data-node]').count(), 3, 'three nodes');
    assert.equal(await page.locator('tr[data-role="leader"]').count(), 1, 'one leader');
    assert.match((await page.getByTestId('mode').textContent()) ?? '', /raft/);
    await shot(page, 'dashboard-raft.png');

    // Kill the leader from the page: the supervisor SIGKILLs it (and restarts it later).
    const t0 = Date.now();
    await page.click(`button[data-action="kill"][data-node="${leader}"]`);
    await page.waitForFunction(
      (old) => {
        const rows = [...document.querySelectorAll('tr[data-role="leader"]')];
        return rows.length === 1 && rows[0]?.getAttribute('data-node') !== old;
      },
      leader,
      { timeout: 5000, polling: 50 },
    );
    const elected = Date.now() - t0;
    assert.ok(elected <= 5000, `new leader shown after ${elected} ms`);
    assert.match((await page.getByTestId('log').textContent()) ?? '', /killed/);
    await shot(page, 'dashboard-raft-new-leader.png');

    // A key put through the key browser, read back with the CLI.
    const value = `from the browser ${Date.now()}`;
    await page.fill('[data-testid="key"]', 'browser/key');
    await page.fill('[data-testid="value"]', JSON.stringify(value));
    await page.click('[data-testid="put"]');
    await page.waitForFunction(
      () => /HTTP 20[01]/.test(document.querySelector('[data-testid="kv-result"]')?.textContent ?? ''),
      undefined,
      {
        timeout: 15_000,
      },
    );
    await page.fill('[data-testid="prefix"]', 'browser/');
    await page.click('[data-testid="list"]');
    await page.waitForSelector('table.keys td:text("browser/key")', { timeout: 5000 });
    const cli = await run(process.execPath, [MAIN, 'get', 'browser/key', '--endpoints', raft.urls.join(',')], {
      timeout: 15_000,
    });
    assert.equal(cli.stdout.trim(), JSON.stringify(value));
    await shot(page, 'dashboard-raft-key.png');
    assert.deepEqual(errors, [], 'no script errors on the page');
    await page.close();

    // The same page for every other mode (started only now, so that their start does not slow the election).
    await raft.stop();
    // Each cluster is kept for the cleanup as soon as it runs, even when another fails to start.
    const settled = await Promise.allSettled(['quorum', 'causal', 'eventual'].map((m) => startCluster(m)));
    const started: Cluster[] = [];
    for (const r of settled) {
      if (r.status === 'fulfilled') {
        started.push(r.value);
        clusters.push(r.value);
      }
    }
    for (const r of settled) if (r.status === 'rejected') throw r.reason;
    for (const [i, mode] of (['quorum', 'causal', 'eventual'] as const).entries()) {
      const c = started[i] as Cluster;
      const p = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      await p.goto(`${c.urls[1]}/ui`);
      await p.waitForFunction(
        () =>
          document.querySelectorAll('tr[data-node]').length === 3 &&
          document.querySelectorAll('tr[data-role="down"]').length === 0,
        undefined,
        { timeout: 20_000 },
      );
      assert.match((await p.getByTestId('mode').textContent()) ?? '', new RegExp(mode));
      const panel = (await p.getByTestId('mode-panel').textContent()) ?? '';
      if (mode === 'quorum') {
        assert.match(panel, /W = 2/);
        assert.equal(await p.locator('tr[data-role="leader"]').count(), 1);
      }
      if (mode === 'causal') assert.match(panel, /vector clock/i);
      if (mode === 'eventual') assert.match(panel, /Converged|differ/);
      await shot(p, `dashboard-${mode}.png`);
      await p.close();
    }
  } finally {
    await browser?.close();
    await Promise.all(clusters.map((c) => c.stop()));
  }
});
