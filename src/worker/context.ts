/**
 * Which step the current code belongs to. Set around every tool invocation; everything the tool
 * starts (timers, sockets, promises) inherits it, so an unhandled rejection, an uncaught exception
 * or a pending request can be attributed to its step.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { StepForensics } from '../forensics/step.ts';
import type { AttemptContainment } from './containment/attempt.ts';

export interface StepScope {
  runId: string;
  stepName: string;
  attempt: number;
  tool: string;
  /** Epoch ms at which the attempt times out (later after a wait for capacity). */
  readonly deadlineAt: number;
  /** Called with (level, message, data) to record an event on this step. */
  record(type: string, data: Record<string, unknown>): void;
  /** Pending operations of this attempt (requests, sockets, child processes, locks, tracked promises). */
  forensics?: StepForensics;
  /** What the attempt started that must stop with it (processes, threads). */
  containment?: AttemptContainment;
}

export const stepContext = new AsyncLocalStorage<StepScope>();

export const currentStep = (): StepScope | undefined => stepContext.getStore();
