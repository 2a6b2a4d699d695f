/**
 * connect_blackhole: a loopback port where TCP connect never completes.
 *
 * Linux answers a SYN only if the listener's accept queue has room (since 4.x `tcp_conn_request`
 * drops the SYN outright when `sk_acceptq_is_full`, whatever tcp_syncookies says), and a client whose
 * SYNs are dropped stays in SYN-SENT, retransmitting at 1, 3, 7, 15, ... s (tcp_syn_retries = 6,
 * about 127 s in all). So: a listener that never accepts, with the smallest queue, filled by the lab.
 *
 * Node cannot listen without accepting: libuv accepts as soon as the fd is readable. The listener
 * therefore lives in a worker thread that blocks its own event loop (Atomics.wait) right after
 * `listen()`, so nothing ever calls accept(). Measured on Linux 6.x: `backlog: 1` admits exactly 2
 * connections (the kernel's test is `queue > backlog`); the third stays in SYN-SENT. Note that Node
 * turns `backlog: 0` into its default of 511, so 0 cannot be used.
 *
 * The lab fills the queue itself, one connection at a time (concurrent SYNs could all be answered
 * before the queue is full). It then keeps one probe connection pending: if a slot ever frees (or a
 * connect that merely took long was mistaken for a drop), the probe takes it and a new probe is made,
 * so the queue stays full. Everything is on 127.0.0.1: no packet leaves the host.
 */
import net from 'node:net';
import { Worker } from 'node:worker_threads';

export interface Blackhole {
  port: number;
  close(): Promise<void>;
}

// CommonJS source evaluated in the worker. The worker posts its port, then sleeps on `flag` until
// close() sets it; terminate() ends the thread and frees the listening fd either way.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const net = require('node:net');
const server = net.createServer();
server.on('error', (err) => parentPort.postMessage({ error: String(err && err.message || err) }));
server.listen({ host: '127.0.0.1', port: workerData.port, backlog: 1 }, () => {
  parentPort.postMessage({ port: server.address().port });
  const flag = new Int32Array(workerData.flag);
  while (Atomics.load(flag, 0) === 0) Atomics.wait(flag, 0, 0);
});
`;

// A loopback connect completes in well under a millisecond; one that has not in 100 ms had its SYN
// dropped. A false positive is harmless: the probe stays pending and takes the slot when it comes.
const PROBE_SETTLE_MS = 100;
// The queue holds 2 (see above); 64 means the mechanism does not work on this OS, stop trying.
const MAX_FILLERS = 64;

export async function startBlackhole(opts: { port: number; log: (line: string) => void }): Promise<Blackhole> {
  const flag = new SharedArrayBuffer(4);
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { flag, port: opts.port } });
  const wake = (): void => {
    const view = new Int32Array(flag);
    Atomics.store(view, 0, 1);
    Atomics.notify(view, 0);
  };

  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', (msg: { port?: number; error?: string }) => {
      if (msg.port !== undefined) resolve(msg.port);
      else reject(new Error(`blackhole listener failed: ${msg.error ?? 'unknown error'}`));
    });
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`blackhole worker exited with code ${code}`)));
  }).catch(async (err: unknown) => {
    wake();
    await worker.terminate();
    throw err;
  });

  const sockets = new Set<net.Socket>();
  let closed = false;
  let settleTimer: NodeJS.Timeout | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let onFilled: (() => void) | undefined;
  const filled = new Promise<void>((resolve) => (onFilled = resolve));

  const probe = (): void => {
    if (closed) return;
    if (sockets.size >= MAX_FILLERS) {
      opts.log(`lab: connect_blackhole could not fill the accept queue of port ${port} after ${MAX_FILLERS} connections; connects there may succeed`);
      onFilled?.();
      return;
    }
    const socket = net.connect({ host: '127.0.0.1', port });
    sockets.add(socket);
    settleTimer = setTimeout(() => onFilled?.(), PROBE_SETTLE_MS);
    socket.once('connect', () => {
      clearTimeout(settleTimer);
      probe(); // this one is a filler now; the next one probes
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // After ~127 s of dropped SYNs the kernel gives up with ETIMEDOUT: replace the probe. Any
      // other error while not closing is unexpected; log it and retry in a second, not in a loop.
      sockets.delete(socket);
      clearTimeout(settleTimer);
      if (closed) return;
      if (err.code !== 'ETIMEDOUT') opts.log(`lab: connect_blackhole probe error ${err.code ?? err.message}`);
      retryTimer = setTimeout(probe, err.code === 'ETIMEDOUT' ? 0 : 1000);
    });
  };
  probe();
  await filled;

  return {
    port,
    async close() {
      closed = true;
      clearTimeout(settleTimer);
      clearTimeout(retryTimer);
      for (const socket of sockets) socket.destroy();
      sockets.clear();
      wake();
      // terminate() also interrupts Atomics.wait (measured: ~4 ms); the listening fd closes with
      // the worker, after which connects get ECONNREFUSED.
      await worker.terminate();
    },
  };
}
