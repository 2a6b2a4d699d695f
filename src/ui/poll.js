// Re-runs `load` every `everyMs` while the page is open (and at once when `deps` change); a load
// still in flight is aborted when the page goes away, so a slow API never piles requests up.
import { useEffect, useState } from 'preact/hooks';

export function usePoll(load, everyMs, deps) {
  const [state, setState] = useState({ data: undefined, error: undefined, loading: true });
  useEffect(() => {
    let stopped = false;
    let timer;
    let controller;
    const tick = async () => {
      controller = new AbortController();
      const deadline = setTimeout(() => controller.abort(), 15000);
      try {
        const data = await load(controller.signal);
        if (!stopped) setState({ data, error: undefined, loading: false });
      } catch (err) {
        if (!stopped) setState((s) => ({ data: s.data, error: err, loading: false }));
      } finally {
        clearTimeout(deadline);
        if (!stopped && everyMs > 0) timer = setTimeout(tick, everyMs);
      }
    };
    tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
      controller?.abort();
    };
  }, deps);
  return state;
}
