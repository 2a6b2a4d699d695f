/**
 * Issue 13, Must show: an `agent` run against the lab (real HTTP, its tool_calls mode) doing 3
 * tool-call turns then answering: 3 tool steps and 4 model-turn steps, usage summed per run; and
 * `kill -9` of the whole process tree (`runwarden start` in a process group of its own, with its
 * supervised worker process) mid-agent, then a restart on the same data: the agent resumes from the
 * last finished turn, checked from the lab's side (its request log) as well as from the run.
 * Twice: killed while a model turn's request is held by the lab (that turn is asked again, the
 * earlier ones never), and while a tool call runs (every turn asked exactly once).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { EventRecord, RunWithSteps, StepDetail } from '../../src/domain/records.ts';
import { startLab, type Lab } from '../../src/lab/index.ts';
import type { LabRequest } from '../../src/lab/requests.ts';
import { createTestDatabase, postgresSkip } from '../helpers/postgres.ts';
import { api, startServer, type ServerProcess } from '../helpers/server.ts';
import { assertNoOrphans, processesOf, waitFor } from '../supervisor/helpers.ts';
import { TOOLS_FILE } from './fixtures/tools.ts';

const pgSkip = await postgresSkip();

type Tree = ServerProcess;

/** `runwarden start` with one worker process, as the leader of a process group of its own. */
function startTree(dir: string, env: Record<string, string>): Promise<Tree> {
  return startServer(['--data-dir', dir, '--lab', 'off', '--workers', '1', '--tools', TOOLS_FILE, '--lease-ms', '1000', '--heartbeat-ms', '300'], env, { detached: true });
}

/** SIGKILL to the whole group; resolves once no process of the deployment is left. */
async function killTree(tree: Tree, dir: string): Promise<void> {
  const exited = new Promise((resolve) => (tree.child.exitCode !== null || tree.child.signalCode !== null ? resolve(null) : tree.child.once('exit', resolve)));
  process.kill(-(tree.child.pid as number), 'SIGKILL');
  await exited;
  await waitFor(() => (processesOf(dir).length === 0 ? true : undefined), 15_000, 'every process of the killed tree to be gone');
}

async function stopTree(tree: Tree): Promise<void> {
  if (tree.child.exitCode !== null || tree.child.signalCode !== null) return;
  const exited = new Promise((resolve) => tree.child.once('exit', resolve));
  process.kill(-(tree.child.pid as number), 'SIGTERM');
  const t = setTimeout(() => process.kill(-(tree.child.pid as number), 'SIGKILL'), 15_000);
  await exited;
  clearTimeout(t);
}

async function labTurns(lab: Lab, key: string): Promise<Array<number | undefined>> {
  const all = (await (await fetch(`${lab.url}/requests`)).json()) as { requests: LabRequest[] };
  return all.requests.filter((r) => r.path.includes(`key=${key}`)).map((r) => r.turn);
}

/** The lab, a data directory and the environment of the trees; `start` starts one, stopped at the end. */
async function setup(t: TestContext, dialect: 'sqlite' | 'postgres', mode: string): Promise<{ lab: Lab; dir: string; start: () => Promise<Tree> }> {
  const lab = await startLab({ port: 0 });
  const dir = mkdtempSync(join(tmpdir(), 'rw-agent-'));
  const db = dialect === 'postgres' ? await createTestDatabase() : undefined;
  const trees: Tree[] = [];
  t.after(async () => {
    for (const tree of trees) await stopTree(tree);
    await lab.close();
    await assertNoOrphans(dir);
    if (db) await db.drop();
    rmSync(dir, { recursive: true, force: true });
  });
  const providers = { scripted: { type: 'openai', baseUrl: `${lab.url}/${mode}/v1`, model: 'lab-1' } };
  const env = { RUNWARDEN_PROVIDERS: JSON.stringify(providers), ...(db ? { DATABASE_URL: db.url } : {}) };
  return {
    lab,
    dir,
    start: async () => {
      const tree = await startTree(dir, env);
      trees.push(tree);
      return tree;
    },
  };
}

async function submitAgent(url: string, tools: string[]): Promise<string> {
  const r = await api<RunWithSteps>(url, '/runs', { body: { plan: { steps: [{ name: 'ag', tool: 'agent', inputs: { prompt: 'What is in the box?', tools, provider: 'scripted', maxTurns: 4, turnTimeoutMs: 120_000 } }] } } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.id;
}

async function waitRun(url: string, runId: string): Promise<RunWithSteps> {
  return waitFor(
    async () => {
      const r = (await api<RunWithSteps>(url, `/runs/${runId}`)).body;
      return ['succeeded', 'failed', 'cancelled'].includes(r.status) ? r : undefined;
    },
    120_000,
    `run ${runId} to finish`,
  );
}

const attempts = async (url: string, runId: string, step: string): Promise<string[]> =>
  (await api<StepDetail>(url, `/runs/${runId}/steps/${step}`)).body.attemptsDetail.map((a) => (a.status === 'lost' ? `lost:${a.error?.code ?? ''}` : a.status));

/** The shape every finished agent run of this file has: 8 steps, the usage of 4 turns summed. */
async function assertAgentRun(url: string, run: RunWithSteps, tool: string): Promise<void> {
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.deepEqual(run.steps.map((s) => [s.name, s.tool, s.status]), [
    ['ag', 'agent', 'succeeded'],
    ['ag-turn-1', 'agent.turn', 'succeeded'],
    ['ag-call-1-1', tool, 'succeeded'],
    ['ag-turn-2', 'agent.turn', 'succeeded'],
    ['ag-call-2-1', tool, 'succeeded'],
    ['ag-turn-3', 'agent.turn', 'succeeded'],
    ['ag-call-3-1', tool, 'succeeded'],
    ['ag-turn-4', 'agent.turn', 'succeeded'],
  ]);
  assert.equal(run.steps.filter((s) => s.tool === 'agent.turn').length, 4, '4 model-turn steps');
  assert.equal(run.steps.filter((s) => s.tool === tool).length, 3, '3 tool steps');
  const out = run.steps[0]?.outputs as { text: string; turns: number; toolCalls: number; usage: { inputTokens: number; outputTokens: number; calls: number } };
  assert.match(out.text, /^Lab answer — /);
  assert.equal(out.turns, 4);
  assert.equal(out.toolCalls, 3);
  assert.equal(out.usage.calls, 4);
  assert.deepEqual(run.usage, out.usage, 'usage summed per run: the 4 answered model calls');
  const events = (await api<{ events: EventRecord[] }>(url, `/runs/${run.id}/events?limit=10000`)).body.events;
  const finished = events.filter((e) => e.type === 'step.finished').map((e) => e.stepName);
  assert.equal(finished.length, 8, 'one step.finished per step');
  assert.equal(new Set(finished).size, 8);
  assert.equal(events.filter((e) => e.type === 'step.added').length, 7, 'each step added once');
  assert.equal(events.at(-1)?.type, 'run.finished');
}

for (const dialect of ['sqlite', 'postgres'] as const) {
  const skip = dialect === 'postgres' ? pgSkip : false;

  test(`[${dialect}] kill -9 of the process tree while the lab holds turn 3: after the restart turn 3 is asked again, turns 1 and 2 never`, { skip }, async (t) => {
    const { lab, dir, start } = await setup(t, dialect, 'tool_calls;turns=3;slow_turn=3;slow_ms=600000;key=held-turn');
    const first = await start();
    const runId = await submitAgent(first.url, ['echo']);
    await waitFor(async () => ((await labTurns(lab, 'held-turn')).includes(3) ? true : undefined), 60_000, 'turn 3 to be asked');
    const turn3 = (await api<StepDetail>(first.url, `/runs/${runId}/steps/ag-turn-3`)).body;
    assert.equal(turn3.status, 'running');
    assert.deepEqual(await labTurns(lab, 'held-turn'), [1, 2, 3]);
    await killTree(first, dir);

    const second = await start();
    const run = await waitRun(second.url, runId);
    await assertAgentRun(second.url, run, 'echo');
    // From the lab's side: the finished turns were not asked again; the interrupted one was.
    assert.deepEqual(await labTurns(lab, 'held-turn'), [1, 2, 3, 3, 4]);
    assert.deepEqual(await attempts(second.url, runId, 'ag-turn-3'), ['lost:WORKER_LOST', 'succeeded']);
    for (const step of ['ag', 'ag-turn-1', 'ag-turn-2', 'ag-call-1-1', 'ag-call-2-1']) assert.deepEqual(await attempts(second.url, runId, step), ['succeeded'], step);
  });

  test(`[${dialect}] kill -9 of the process tree during a tool call: after the restart the call runs again and every turn is asked exactly once`, { skip }, async (t) => {
    const dir0 = mkdtempSync(join(tmpdir(), 'rw-agent-marks-'));
    t.after(() => rmSync(dir0, { recursive: true, force: true }));
    const args = encodeURIComponent(JSON.stringify({ holdStep: 'ag-call-2-1', markerDir: dir0 }));
    const { lab, dir, start } = await setup(t, dialect, `tool_calls;turns=3;args=${args};key=held-call`);
    const first = await start();
    const runId = await submitAgent(first.url, ['hold']);
    await waitFor(() => (existsSync(join(dir0, 'ag-call-2-1.held')) ? true : undefined), 60_000, 'the second tool call to be running');
    assert.deepEqual(await labTurns(lab, 'held-call'), [1, 2]);
    await killTree(first, dir);

    const second = await start();
    const run = await waitRun(second.url, runId);
    await assertAgentRun(second.url, run, 'hold');
    assert.deepEqual(await labTurns(lab, 'held-call'), [1, 2, 3, 4], 'each turn asked once');
    assert.deepEqual(await attempts(second.url, runId, 'ag-call-2-1'), ['lost:WORKER_LOST', 'succeeded']);
    assert.deepEqual(run.steps.find((s) => s.name === 'ag-call-2-1')?.outputs, { step: 'ag-call-2-1', attempt: 2 });
    for (const step of ['ag', 'ag-turn-1', 'ag-turn-2', 'ag-turn-3', 'ag-turn-4', 'ag-call-1-1', 'ag-call-3-1']) assert.deepEqual(await attempts(second.url, runId, step), ['succeeded'], step);
  });
}
