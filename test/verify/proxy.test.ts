import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { LinkProxy } from '../../src/verify/proxy.js';

/** Connects to the proxy and collects what comes back; `closed` resolves when the socket closes. */
function client(port: number): Promise<{ sock: net.Socket; got: () => string; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    let data = '';
    const sock = net.connect({ host: '127.0.0.1', port }, () =>
      resolve({ sock, got: () => data, closed: new Promise((r) => sock.once('close', () => r())) }),
    );
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => (data += d));
    sock.on('error', () => undefined);
    sock.once('error', reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

describe('LinkProxy', () => {
  let echo: net.Server;
  let echoPort = 0;
  let proxy: LinkProxy;

  before(async () => {
    echo = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    echoPort = (echo.address() as net.AddressInfo).port;
    proxy = await LinkProxy.start({ host: '127.0.0.1', port: echoPort });
  });
  after(async () => {
    await proxy.close();
    await new Promise<void>((r) => echo.close(() => r()));
  });

  test('pass forwards bytes both ways', async () => {
    proxy.setMode('pass');
    const c = await client(proxy.port);
    c.sock.write('hello');
    await until(() => c.got() === 'hello');
    c.sock.destroy();
  });

  test('blackhole keeps the connection open and discards bytes; healing resets the damaged connection', async () => {
    proxy.setMode('pass');
    const c = await client(proxy.port);
    c.sock.write('a');
    await until(() => c.got() === 'a');
    proxy.setMode('blackhole');
    c.sock.write('lost');
    await sleep(150);
    assert.equal(c.got(), 'a', 'nothing came back');
    assert.equal(c.sock.destroyed, false, 'the connection is still open');
    // New connections are accepted too, and are just as silent.
    const c2 = await client(proxy.port);
    c2.sock.write('x');
    await sleep(100);
    assert.equal(c2.got(), '');
    assert.equal(c2.sock.destroyed, false);
    proxy.setMode('pass');
    await c.closed; // its stream has a hole: reset
    await c2.closed;
    const c3 = await client(proxy.port);
    c3.sock.write('back');
    await until(() => c3.got() === 'back');
    c3.sock.destroy();
  });

  test('refuse closes open connections and new ones at once', async () => {
    proxy.setMode('pass');
    const c = await client(proxy.port);
    c.sock.write('z');
    await until(() => c.got() === 'z');
    proxy.setMode('refuse');
    await c.closed;
    const c2 = await client(proxy.port);
    c2.sock.write('nope');
    await c2.closed;
    assert.equal(c2.got(), '');
    assert.equal(proxy.connections, 0);
    proxy.setMode('pass');
    const c3 = await client(proxy.port);
    c3.sock.write('ok');
    await until(() => c3.got() === 'ok');
    c3.sock.destroy();
  });
});
