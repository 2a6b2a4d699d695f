// A run kept live: its record (re-read, at most every 400 ms, when its events say something
// changed), every stored event (from the event stream, which replays them first), and the text
// its running steps stream (llm.delta frames, kept per step and attempt, never stored).
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, followEvents } from './api.js';

const REFETCH_MS = 400;
/** Characters of streamed text kept per step attempt (the stored output has the whole text). */
const TEXT_KEEP = 20000;

export function useLiveRun(runId, { withEvents = true } = {}) {
  const [run, setRun] = useState(undefined);
  const [error, setError] = useState(undefined);
  const [events, setEvents] = useState([]);
  const [texts, setTexts] = useState({});
  const [stream, setStream] = useState({ state: 'connecting' });
  const pending = useRef({ timer: undefined, events: [] });

  useEffect(() => {
    const controller = new AbortController();
    const { signal } = controller;
    let refetching = false;
    let again = false;
    const refetch = async () => {
      if (refetching) {
        again = true;
        return;
      }
      refetching = true;
      try {
        setRun(await api(`/runs/${encodeURIComponent(runId)}`, { signal: AbortSignal.any([signal, AbortSignal.timeout(15000)]) }));
        setError(undefined);
      } catch (err) {
        if (!signal.aborted) setError(err);
      } finally {
        refetching = false;
        if (again && !signal.aborted) {
          again = false;
          setTimeout(refetch, REFETCH_MS);
        }
      }
    };
    refetch();
    let last = 0;
    const flushEvents = () => {
      const batch = pending.current.events;
      pending.current = { timer: undefined, events: [] };
      if (batch.length > 0) setEvents((prev) => prev.concat(batch));
    };
    followEvents(runId, {
      signal,
      onEvent: (e) => {
        if (withEvents) {
          // Batched per animation frame: a replay of thousands of events renders once, not once each.
          pending.current.events.push(e);
          pending.current.timer ??= requestAnimationFrame(flushEvents);
        }
        if (e.type.startsWith('step.') || e.type.startsWith('run.') || e.type === 'llm.usage') {
          const now = Date.now();
          if (now - last > REFETCH_MS) {
            last = now;
            refetch();
          } else setTimeout(refetch, REFETCH_MS);
        }
      },
      onDelta: (d) => {
        const key = `${d.stepName}#${d.attempt}`;
        setTexts((prev) => ({ ...prev, [key]: ((d.reset ? '' : prev[key] ?? '') + d.text).slice(-TEXT_KEEP) }));
      },
      onState: (state, message) => {
        setStream({ state, message });
        if (state === 'finished') refetch();
      },
    });
    return () => {
      controller.abort();
      if (pending.current.timer) cancelAnimationFrame(pending.current.timer);
    };
  }, [runId]);

  return { run, error, events, texts, stream };
}
