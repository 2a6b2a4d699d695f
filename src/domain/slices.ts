/**
 * Cooperative slicing of long synchronous work (validating a 10,000-step plan, inserting its rows):
 * the work checks `due()` as it goes and awaits `pause()` when its slice is used up, so that the
 * event loop accepts connections and answers `/health` between slices. Measured before slicing:
 * one valid 10,000-step POST held the API's loop for 0.55-0.9 s.
 */

/** Longest stretch of synchronous work between two turns of the event loop. */
export const SLICE_MS = 8;

export interface Slicer {
  /** Whether the current slice is used up (cheap: one clock read). */
  due(): boolean;
  /** Lets the event loop turn (a macrotask, so I/O callbacks run), then starts a new slice. */
  pause(): Promise<void>;
}

export function slicer(sliceMs = SLICE_MS): Slicer {
  let start = performance.now();
  return {
    due: () => performance.now() - start >= sliceMs,
    async pause() {
      await yieldToLoop();
      start = performance.now();
    },
  };
}

/** Resolves in a later macrotask (after the poll phase: pending connections and requests run first). */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
