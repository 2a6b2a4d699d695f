/**
 * Waiting for capacity, as a tool's call tells the attempt it runs in (docs/flow-control.md#waiting-for-capacity):
 * while a hold is open the attempt's deadline stands still, and the wait counts against its
 * `queueTimeoutMs` instead. The worker's side is src/worker/attempt-clock.ts; the providers' gate
 * (src/llm/http-client.ts) holds it while a call waits for a slot.
 */

/** What a call waits for at a provider's gate (src/flow/gate.ts GateWait). */
export interface CapacityWait {
  provider: string;
  limit: 'paused' | 'concurrency' | 'requestsPerMinute' | 'tokensPerMinute';
  used: number;
  cap: number;
  /** Epoch ms when the gate expects a slot. */
  retryAt: number;
}

/** One call's wait: told what it waits for as that changes, and ended once (further calls do nothing). */
export interface CapacityHold {
  update(wait: CapacityWait): void;
  /** Returns how long this hold kept the clock still, in ms. */
  end(): number;
}

/** What a tool's call asks of the attempt it runs in (StepScope.capacity). */
export interface CapacityClock {
  hold(wait: CapacityWait): CapacityHold;
}
