/**
 * Ports for the nodes of local clusters (tests, benchmarks, verify), which must know each other's
 * addresses before they start. They are picked below Linux's ephemeral range (32768 and up by default):
 * a port picked there could be taken, between the pick and the node's listen (or a node's restart), as
 * the source port of some outgoing connection.
 */
import net from 'node:net';

const PORT_LO = 20_000;
const PORT_HI = 32_000;
/** Ports this process handed out already (other processes are ruled out by binding). */
const taken = new Set<number>();

function bindable(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/** A port free a moment ago, outside the ephemeral range, not handed out before by this process. */
export async function freeNodePort(host = '127.0.0.1'): Promise<number> {
  for (let i = 0; i < 1000; i++) {
    const port = PORT_LO + Math.floor(Math.random() * (PORT_HI - PORT_LO));
    if (taken.has(port)) continue;
    taken.add(port);
    if (await bindable(port, host)) return port;
  }
  throw new Error(`no free port found in ${PORT_LO}-${PORT_HI}`);
}

/** `n` such ports. */
export async function freeNodePorts(n: number, host = '127.0.0.1'): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await freeNodePort(host));
  return out;
}

/** The first of `n` consecutive such ports (for layouts addressed as base + i). */
export async function freeNodePortRun(n: number, host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = PORT_LO + Math.floor(Math.random() * (PORT_HI - PORT_LO - n));
    const run = Array.from({ length: n }, (_, i) => base + i);
    if (run.some((p) => taken.has(p))) continue;
    for (const p of run) taken.add(p);
    const ok = await Promise.all(run.map((p) => bindable(p, host)));
    if (ok.every(Boolean)) return base;
  }
  throw new Error(`no run of ${n} free ports found in ${PORT_LO}-${PORT_HI}`);
}
