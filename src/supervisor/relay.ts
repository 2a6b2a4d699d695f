/**
 * Store notifications across the processes of one SQLite deployment (they do not cross processes by
 * themselves; PostgreSQL's LISTEN/NOTIFY does that there): 'ready' and 'cancel' published in the
 * supervisor's process go down to every worker; what a worker sends up ('events' for the API's SSE
 * streams, streamed text, 'ready' for its siblings) is published here and passed to the others.
 * Notifications are coalesced: one message per worker per turn of the loop.
 */
import type { Store } from '../store/store.ts';
import type { NotifyDown, NotifyUp } from './protocol.ts';

interface Pending {
  ready: boolean;
  cancel: Set<string>;
}

export class NotificationRelay {
  readonly #store: Store;
  readonly #send: (slot: number, msg: NotifyDown) => void;
  readonly #pending = new Map<number, Pending>();
  #scheduled = false;
  #unsubscribe: (() => void) | undefined;

  constructor(store: Store, send: (slot: number, msg: NotifyDown) => void) {
    this.#store = store;
    this.#send = send;
  }

  /** Starts relaying this process's notifications down to `slots`. */
  start(slots: readonly number[]): void {
    for (const s of slots) this.#pending.set(s, { ready: false, cancel: new Set() });
    this.#unsubscribe = this.#store.subscribe((n) => {
      if (n.kind === 'ready') for (const p of this.#pending.values()) p.ready = true;
      else if (n.kind === 'cancel') for (const p of this.#pending.values()) p.cancel.add(n.runId);
      else return;
      this.#schedule();
    });
  }

  stop(): void {
    this.#unsubscribe?.();
  }

  /** A worker's process was replaced: what was pending for the old one is not for the new one. */
  reset(slot: number): void {
    this.#pending.set(slot, { ready: false, cancel: new Set() });
  }

  /** What worker `from` sent up: published here, and its 'ready' passed to the other workers. */
  up(from: number, m: NotifyUp): void {
    if (m.runIds && m.runIds.length > 0) this.#store.publish({ kind: 'events', runIds: m.runIds });
    for (const delta of m.deltas ?? []) this.#store.publish({ kind: 'delta', delta });
    if (!m.ready) return;
    for (const [slot, p] of this.#pending) if (slot !== from) p.ready = true;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      for (const [slot, p] of this.#pending) {
        if (!p.ready && p.cancel.size === 0) continue;
        this.#send(slot, { t: 'notify', ...(p.ready ? { ready: true } : {}), ...(p.cancel.size > 0 ? { cancel: [...p.cancel] } : {}) });
        p.ready = false;
        p.cancel.clear();
      }
    });
  }
}
