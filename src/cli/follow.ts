/**
 * Follow a run's event stream until `run.finished`: the TypeScript client's resuming stream
 * (src/client/stream.ts: Last-Event-ID on every reconnect, deadlines on connecting and silence, a
 * give-up time) with its failures as CliErrors. When the server ends a stream without a
 * `run.finished` the CLI has seen (the run finished before the resume point), the run itself says
 * how it ended.
 */
import type { EventRecord, RunWithSteps } from '../domain/records.ts';
import { RUN_TERMINAL } from '../domain/states.ts';
import { streamRunEvents, type StreamOptions } from '../client/stream.ts';
import { toCliError, type ApiClient } from './client.ts';
import { CliError, EXIT } from './io.ts';

export interface FollowOptions extends Omit<StreamOptions, 'after'> {
  /** Resume after this seq. @default 0 */
  afterSeq?: number;
}

export async function followRunEvents(
  client: ApiClient,
  runId: string,
  onEvent: (event: EventRecord) => void,
  opts: FollowOptions = {},
): Promise<EventRecord> {
  const { afterSeq, ...stream } = opts;
  let last: EventRecord | undefined;
  try {
    for await (const event of streamRunEvents(client.http, runId, { ...stream, ...(afterSeq !== undefined ? { after: afterSeq } : {}) })) {
      last = event;
      onEvent(event);
    }
  } catch (err) {
    throw toCliError(err);
  }
  if (last?.type === 'run.finished') return last;
  const run = await client.get<RunWithSteps>(`/runs/${encodeURIComponent(runId)}`);
  if (!RUN_TERMINAL.has(run.status)) throw new CliError(EXIT.FAILED, `the event stream of run ${runId} ended before the run did (status ${run.status})`);
  return { seq: last?.seq ?? afterSeq ?? 0, ts: run.finishedAt ?? new Date().toISOString(), type: 'run.finished', runId, data: { status: run.status, error: run.error } };
}
