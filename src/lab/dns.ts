/**
 * slow_dns: a DNS server on 127.0.0.1 (UDP) that reads queries and, by default, never answers.
 *
 * The lab cannot slow the system resolver (getaddrinfo reads /etc/resolv.conf and runs on libuv's
 * thread pool), so this is the honest equivalent: a client whose lookups go through this server
 * (node:dns `Resolver.setServers(['127.0.0.1:PORT'])` used as the connection's `lookup`) hangs in
 * name resolution, which is exactly the phase to bound.
 *
 * A name whose first label is `delay-<ms>` is answered after <ms> with 127.0.0.1 (A) or ::1 (AAAA),
 * so "slow but eventually fine" can be tested too. Answers only ever point at loopback.
 */
import dgram from 'node:dgram';

export interface SilentDns {
  port: number;
  close(): Promise<void>;
}

const TYPE_A = 1;
const TYPE_AAAA = 28;
// Bound the timers a flood of delayed queries can create, and how long any one may wait.
const MAX_PENDING = 10_000;
const MAX_DELAY_MS = 600_000;

interface Question {
  id: number;
  recursionDesired: boolean;
  name: string;
  type: number;
  /** The question section as received, echoed in the answer. */
  section: Buffer;
}

export async function startSilentDns(opts: { port: number; log: (line: string) => void }): Promise<SilentDns> {
  const socket = dgram.createSocket('udp4');
  const pending = new Set<NodeJS.Timeout>();

  socket.on('message', (msg, rinfo) => {
    const question = parseQuestion(msg);
    if (!question) return; // not a query we understand: silence is the mode anyway
    const delay = /^delay-(\d+)(?:\.|$)/i.exec(question.name);
    if (!delay || pending.size >= MAX_PENDING) return;
    const timer = setTimeout(() => {
      pending.delete(timer);
      socket.send(answer(question), rinfo.port, rinfo.address, (err) => {
        if (err) opts.log(`lab: slow_dns answer failed: ${err.message}`);
      });
    }, Math.min(Number(delay[1]), MAX_DELAY_MS));
    pending.add(timer);
  });

  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(opts.port, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve();
    });
  });
  socket.on('error', (err) => opts.log(`lab: slow_dns socket error: ${err.message}`));

  return {
    port: socket.address().port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const timer of pending) clearTimeout(timer);
        pending.clear();
        socket.close(() => resolve());
      }),
  };
}

function parseQuestion(msg: Buffer): Question | null {
  if (msg.length < 12) return null;
  const flags = msg.readUInt16BE(2);
  if (flags & 0x8000 || msg.readUInt16BE(4) < 1) return null; // a response, or no question
  const labels: string[] = [];
  let at = 12;
  for (;;) {
    const len = msg[at];
    if (len === undefined || len > 63) return null; // truncated, or a compression pointer (not valid in a query)
    at += 1;
    if (len === 0) break;
    if (at + len > msg.length) return null;
    labels.push(msg.toString('latin1', at, at + len));
    at += len;
  }
  if (at + 4 > msg.length) return null;
  return {
    id: msg.readUInt16BE(0),
    recursionDesired: (flags & 0x0100) !== 0,
    name: labels.join('.'),
    type: msg.readUInt16BE(at),
    section: msg.subarray(12, at + 4),
  };
}

function answer(q: Question): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  header.writeUInt16BE(0x8080 | (q.recursionDesired ? 0x0100 : 0), 2); // QR, RA, RCODE 0
  header.writeUInt16BE(1, 4);
  let record: Buffer | null = null;
  if (q.type === TYPE_A || q.type === TYPE_AAAA) {
    const address = q.type === TYPE_A ? Buffer.from([127, 0, 0, 1]) : Buffer.from([...new Array<number>(15).fill(0), 1]);
    record = Buffer.alloc(12);
    record.writeUInt16BE(0xc00c, 0); // pointer to the name in the question
    record.writeUInt16BE(q.type, 2);
    record.writeUInt16BE(1, 4); // class IN
    record.writeUInt32BE(0, 6); // TTL 0: never cache a lab answer
    record.writeUInt16BE(address.length, 10);
    record = Buffer.concat([record, address]);
  }
  header.writeUInt16BE(record ? 1 : 0, 6);
  return Buffer.concat(record ? [header, q.section, record] : [header, q.section]);
}
