/**
 * A promise bounded in time: `p`, or a rejection saying that `what` gave no answer within `ms`. The
 * timer is cleared as soon as `p` settles, so a bounded call that answers keeps nothing alive.
 */
export function withTimeout<T>(p: Promise<T>, ms: number, what = 'the call'): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms < 1000 ? `${ms} ms` : `${ms / 1000} s`}`)), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(t);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
