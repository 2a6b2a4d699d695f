/** Mode name -> behaviour, and the latency every responding mode waits out first. */
import type { ModeName } from '../catalog.ts';
import type { LabExchange } from '../exchange.ts';
import type { LabState } from '../state.ts';
import { errorBody } from '../wire.ts';
import { echoHeaders } from './echo.ts';
import { cleanCloseNoDone, keepaliveRace, resetMidBody } from './breaks.ts';
import { healthy } from './healthy.ts';
import { hugeResponse } from './huge.ts';
import { overloaded, rateLimited } from './limits.ts';
import { malformedSse } from './malformed.ts';
import { quota } from './quota.ts';
import { headersNoBody, noHeaders, streamStall, trickle } from './stalls.ts';
import { toolCalls } from './tool-calls.ts';
import type { Mode } from './types.ts';

// connect_blackhole cannot happen on a connection that already exists: a request that got here used
// the wrong port. 421 Misdirected Request says exactly that.
const misdirected: Mode = (ex) => async () => {
  ex.sendJson(421, errorBody(ex.format, 421, 'connect_blackhole lives on its own port: take its baseUrl from GET /modes.'));
};

const MODES: Record<ModeName, Mode> = {
  healthy,
  connect_blackhole: misdirected,
  no_headers: noHeaders,
  headers_no_body: headersNoBody,
  stream_stall: streamStall,
  trickle,
  reset_mid_body: resetMidBody,
  clean_close_no_done: cleanCloseNoDone,
  rate_limited: rateLimited,
  overloaded,
  malformed_sse: malformedSse,
  keepalive_race: keepaliveRace,
  // A request that reached the HTTP port through slow_dns's hostname was resolved: answer it.
  slow_dns: healthy,
  huge_response: hugeResponse,
  echo_headers: echoHeaders,
  tool_calls: toolCalls,
  quota,
};

/** Validates the parameters (throws ParamError before any byte is sent), waits the latency, runs the mode. */
export async function runMode(ex: LabExchange, lab: LabState): Promise<void> {
  const latencyMs = ex.params.int('latency_ms', lab.defaultLatencyMs, 0, 3_600_000);
  const run = MODES[ex.mode](ex, lab);
  if (ex.mode !== 'no_headers' && !(await ex.sleep(latencyMs))) return;
  await run();
}
