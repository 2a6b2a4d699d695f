/**
 * The states of a supervisor's worker slot, declared once, with the moves between them (the
 * supervisor moves a slot only through `moveSlot`, which refuses any other).
 *
 * starting: spawned, not ready yet; running: ready, heartbeating; stalled: its event loop is
 * blocked (watchdog report, or silence); killing: the supervisor decided to kill it (a stall);
 * stopping: asked to drain (shutdown, or replaced because it cannot contain a step); restarting:
 * gone, its replacement due after a backoff; stopped: no process, none wanted.
 */
import { assertTransition } from '../domain/states.ts';

export const SLOT_STATES = ['starting', 'running', 'stalled', 'killing', 'stopping', 'restarting', 'stopped'] as const;
export type SlotState = (typeof SLOT_STATES)[number];

export const SLOT_TRANSITIONS: Readonly<Record<SlotState, readonly SlotState[]>> = Object.freeze({
  // A slot whose process dies moves to restarting (or stopped, when the supervisor stops) from any
  // state that has a process.
  starting: ['running', 'stalled', 'killing', 'stopping', 'restarting', 'stopped'],
  running: ['stalled', 'killing', 'stopping', 'restarting', 'stopped'],
  stalled: ['running', 'killing', 'stopping', 'restarting', 'stopped'],
  killing: ['restarting', 'stopped'],
  stopping: ['restarting', 'stopped'],
  restarting: ['starting', 'stopped'],
  stopped: ['starting'],
});

/** Moves `slot` to `to` (a no-op when it is there already); an illegal move throws. */
export function moveSlot(slot: { state: SlotState }, to: SlotState): void {
  if (slot.state === to) return;
  assertTransition('worker slot', SLOT_TRANSITIONS, slot.state, to);
  slot.state = to;
}
