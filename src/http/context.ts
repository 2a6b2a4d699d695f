/** What every route module receives from buildApp. */
import type { EngineFacade } from '../engine/facade.ts';
import type { Admission } from './admission.ts';
import type { HttpMetrics } from './metrics.ts';
import type { SseHub, SseOptions } from './sse.ts';

export interface HttpContext {
  engine: EngineFacade;
  version: string;
  bodyLimitBytes: number;
  hub: SseHub;
  sse: SseOptions;
  metrics: HttpMetrics;
  startedAt: number;
  log: (line: string) => void;
  /** Run submissions (POST /runs) allowed at once, and waiting. */
  admission: Admission;
}
