// Runs the plan twice: on a runtime embedded in this process (the tools passed as objects), then,
// when RUNWARDEN_URL is set, through the HTTP client against a separately started
// `npx runwarden start --tools build/tools.js`. Each run's events are followed to the end.
import { createClient, isApiError, startRuntime, type Event, type RunwardenClient } from 'runwarden';
import { greetingPlan } from './plan.ts';
import tools from './tools.ts';

// The few Node globals used here, read through globalThis so that the example compiles with only
// runwarden and typescript installed (a real application would add @types/node).
const proc = (globalThis as unknown as { process: { env: Record<string, string | undefined>; exitCode?: number } }).process;

function show(where: string, e: Event): void {
  const step = e.stepName ? ` ${e.stepName}` : '';
  if (e.type === 'step.finished') console.log(`${where}: #${e.seq} ${e.type}${step} ${e.data.status} in ${e.data.durationMs} ms`);
  else if (e.type === 'run.finished') console.log(`${where}: #${e.seq} ${e.type} ${e.data.status}`);
  else console.log(`${where}: #${e.seq} ${e.type}${step}`);
}

async function runOn(where: string, client: RunwardenClient, text: string): Promise<boolean> {
  const created = await client.runs.create({ plan: greetingPlan(text), labels: { example: where } });
  console.log(`${where}: run ${created.id} created (${created.steps.length} steps)`);
  const seqs: number[] = [];
  for await (const event of client.stream(created.id)) {
    seqs.push(event.seq);
    show(where, event);
  }
  const run = await client.waitForRun(created.id, { timeoutMs: 30_000 });
  const report = run.steps.find((s) => s.name === 'report');
  console.log(`${where}: run ${run.id} ${run.status}: ${JSON.stringify(report?.outputs)} (events ${seqs.join(',')})`);
  return run.status === 'succeeded';
}

async function main(): Promise<boolean> {
  let ok = true;
  // port 0: any free port; lab 'off': these tools need no LLM.
  const runtime = await startRuntime({ port: 0, dataDir: proc.env.EXAMPLE_DATA_DIR ?? '.runwarden-example', workers: 1, lab: 'off', tools });
  try {
    ok = (await runOn('embedded', runtime.client, 'hello from an embedded runtime')) && ok;
  } finally {
    // Drains running steps (up to drainMs), then closes the API, the worker and the database.
    await runtime.close();
  }

  const url = proc.env.RUNWARDEN_URL;
  if (url) {
    const client = createClient({ baseUrl: url, ...(proc.env.RUNWARDEN_TOKEN ? { token: proc.env.RUNWARDEN_TOKEN } : {}) });
    ok = (await runOn('remote', client, 'hello over HTTP')) && ok;
    try {
      await client.runs.get('no-such-run');
    } catch (err) {
      if (!isApiError(err, 'NOT_FOUND')) throw err;
      console.log(`remote: a missing run is ${err.status} ${err.code}`);
    }
  }
  return ok;
}

main().then(
  (ok) => {
    proc.exitCode = ok ? 0 : 1;
  },
  (err: unknown) => {
    console.error(err);
    proc.exitCode = 1;
  },
);
