/**
 * Name lookup with a bound. Its own timer ends the wait at the connect deadline, and `cancel()` ends
 * it when the attempt is aborted. The system resolver (getaddrinfo) cannot really be cancelled: it
 * holds a libuv thread until the resolver gives up, and we only stop waiting. With `dnsServers` the
 * query goes through c-ares (dns.Resolver), whose `cancel()` ends it for real.
 */
import dns from 'node:dns';
import type net from 'node:net';

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

export interface BoundedLookupOptions {
  /** Epoch ms at which the lookup gives up (EDNSTIMEOUT). */
  deadlineAt: number;
  dnsServers?: readonly string[];
  onStart(): void;
  onResolved(): void;
}

export interface BoundedLookup {
  lookup: net.LookupFunction;
  /** Stop waiting (and cancel the c-ares query); the callback is never called afterwards. */
  cancel(): void;
}

export function boundedLookup(o: BoundedLookupOptions): BoundedLookup {
  let cancelCurrent: (() => void) | undefined;
  const lookup = (hostname: string, options: dns.LookupOptions, callback: LookupCallback): void => {
    o.onStart();
    const all = options.all === true;
    let finished = false;
    let resolver: dns.Resolver | undefined;
    const remaining = Math.max(1, o.deadlineAt - Date.now());
    const finish = (err: NodeJS.ErrnoException | null, addrs: dns.LookupAddress[]): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      cancelCurrent = undefined;
      if (!err && addrs.length === 0) err = Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' });
      if (err) {
        callback(err, all ? [] : '', 0);
        return;
      }
      o.onResolved();
      if (all) callback(null, addrs);
      else callback(null, addrs[0]!.address, addrs[0]!.family);
    };
    const timer = setTimeout(() => {
      finish(Object.assign(new Error(`DNS lookup of ${hostname} did not answer within ${remaining} ms`), { code: 'EDNSTIMEOUT' }), []);
    }, remaining);
    cancelCurrent = () => {
      finished = true;
      clearTimeout(timer);
      resolver?.cancel();
    };
    const family = typeof options.family === 'number' ? options.family : 0;
    if (hostname === 'localhost') {
      const v4 = { address: '127.0.0.1', family: 4 };
      const v6 = { address: '::1', family: 6 };
      const addrs = family === 6 ? [v6] : family === 4 ? [v4] : [v4, v6];
      process.nextTick(() => finish(null, addrs));
      return;
    }
    if (o.dnsServers && o.dnsServers.length > 0) {
      const r = new dns.Resolver({ timeout: remaining, tries: 1 });
      resolver = r;
      r.setServers([...o.dnsServers]);
      const v6 = (): void => {
        r.resolve6(hostname, (err6, addrs6) => finish(err6, err6 ? [] : addrs6.map((address) => ({ address, family: 6 }))));
      };
      if (family === 6) {
        v6();
        return;
      }
      r.resolve4(hostname, (err4, addrs4) => {
        if (!err4 && addrs4.length > 0) finish(null, addrs4.map((address) => ({ address, family: 4 })));
        else if (family === 4) finish(err4, []);
        else v6();
      });
      return;
    }
    dns.lookup(hostname, { all: true, family }, (err, addrs) => finish(err, err ? [] : addrs));
  };
  return {
    lookup,
    cancel: () => {
      cancelCurrent?.();
      cancelCurrent = undefined;
    },
  };
}
