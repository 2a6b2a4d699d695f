import assert from 'node:assert/strict';
import { Resolver } from 'node:dns';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { startLab } from '../../src/lab/index.ts';
import { CHAT, RawClient, within, withLab } from './helpers.ts';

function connectOutcome(port: number): { socket: net.Socket; outcome: Promise<string> } {
  const socket = net.connect({ host: '127.0.0.1', port });
  const outcome = new Promise<string>((resolve) => {
    socket.once('connect', () => resolve('connected'));
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
  return { socket, outcome };
}

function portOf(baseUrl: string): number {
  return Number(new URL(baseUrl).port);
}

test('connect_blackhole: a connect to its port stays pending; close() tears the port down', async () => {
  const lab = await startLab({ port: 0 });
  const port = portOf(lab.modes().find((m) => m.name === 'connect_blackhole')?.baseUrl ?? 'http://127.0.0.1:0/v1');
  try {
    assert.ok(port > 0);
    assert.notEqual(port, lab.port);

    const attempts = [connectOutcome(port), connectOutcome(port)];
    const first = await within(Promise.race(attempts.map((a) => a.outcome)), 1200, 'still pending');
    assert.equal(first, 'still pending', 'no connect completed or failed within 1.2 s');
    for (const a of attempts) {
      assert.equal(a.socket.pending, true);
      a.socket.destroy();
    }

    // The HTTP port itself answers the mode's path with a pointer to the right port.
    const misdirected = await RawClient.request(lab.port, 'POST', '/connect_blackhole/v1/chat/completions', CHAT());
    assert.equal((await misdirected.untilComplete()).status, 421);
    misdirected.destroy();
  } finally {
    const started = performance.now();
    await lab.close();
    assert.ok(performance.now() - started < 1000, 'close() is quick');
  }
  const after = connectOutcome(port);
  const outcome = await within(after.outcome, 3000, 'timeout');
  after.socket.destroy();
  assert.equal(outcome, 'ECONNREFUSED', 'the listener is gone after close()');
});

test('slow_dns: queries to the lab resolver are never answered; delay-<ms> names resolve to loopback', async () => {
  await withLab(async (lab) => {
    const mode = lab.modes().find((m) => m.name === 'slow_dns');
    assert.ok(mode?.howTo);
    const server = /127\.0\.0\.1:\d+/.exec(mode.howTo)?.[0] ?? '';
    const host = new URL(mode.baseUrl).hostname;

    const silent = new Resolver();
    silent.setServers([server]);
    const pending = new Promise<string>((resolve) => {
      silent.resolve4(host, (err, addresses) => resolve(err ? (err.code ?? err.message) : addresses.join(',')));
    });
    const first = await within(pending, 1000, 'still pending');
    assert.equal(first, 'still pending');
    silent.cancel();
    assert.equal(await pending, 'ECANCELLED');

    const delayed = new Resolver();
    delayed.setServers([server]);
    const started = performance.now();
    const addresses = await new Promise<string[]>((resolve, reject) => delayed.resolve4(`delay-120.${host}`, (err, a) => (err ? reject(err) : resolve(a))));
    assert.deepEqual(addresses, ['127.0.0.1']);
    assert.ok(performance.now() - started >= 110);
    const six = await new Promise<string[]>((resolve, reject) => delayed.resolve6(`delay-1.${host}`, (err, a) => (err ? reject(err) : resolve(a))));
    assert.deepEqual(six, ['::1']);

    // End to end, as docs/lab.md shows: an http client whose lookup goes through the lab resolver.
    const lookup: net.LookupFunction = (hostname, options, callback) => {
      delayed.resolve4(hostname, (err, found) => {
        const address = found?.[0] ?? '';
        if (err) callback(err, '', 4);
        else if (options.all) (callback as unknown as (e: null, list: { address: string; family: number }[]) => void)(null, [{ address, family: 4 }]);
        else callback(null, address, 4);
      });
    };
    const url = new URL(mode.baseUrl);
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: `delay-20.${host}`, port: url.port, path: `${url.pathname}/models`, lookup, agent: false }, (res) => {
        res.resume();
        res.once('end', () => resolve(res.statusCode ?? 0));
      });
      req.once('error', reject);
      req.end();
    });
    assert.equal(status, 200);
  });
});
