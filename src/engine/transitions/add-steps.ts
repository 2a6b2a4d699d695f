/**
 * checkAdditions + writeAdditions: the steps that succeeded attempts added to their runs (`ctx.addSteps`), written in the
 * transaction that records those attempts, so that a step's additions and its completion commit
 * together or not at all. The worker has checked them against its tools (domain/added-steps.ts);
 * what only the run can answer is checked here: names not taken, dependencies that exist,
 * templates that name a step upstream or already succeeded, and the run's `maxSteps`. A refused
 * addition fails the adding step (STEPS_INVALID, MAX_STEPS_EXCEEDED) and adds nothing.
 *
 * Concurrency (PostgreSQL; SQLite runs one transaction at a time):
 * - an added step that depends on an existing step which has not ended is appended to that step's
 *   dependents (`appendDependents`, only while it has not ended). A transaction finishing that step
 *   at the same moment either ends it first (the append then finds it ended, and the step is read
 *   again) or waits for this one and reads the appended dependents from its own update (`endSteps`);
 * - the new steps' positions and the maxSteps check use the run's step count as read; a
 *   transaction that added steps to the same run meanwhile makes this one run again (TransactionRace);
 * - each adding step must still hold its lease when its additions are written; if the reaper or
 *   another worker took it in between, the transaction runs again (and then refuses the completion).
 */
import type { Additions } from '../../domain/added-steps.ts';
import { RunwardenError, type ErrorDetail, type SerializedError } from '../../domain/errors.ts';
import { DEFAULT_MAX_STEPS, flowOf, invalid, type ValidatedStep } from '../../domain/plan.ts';
import { findTemplates } from '../../domain/templates.ts';
import type { StepState } from '../../domain/states.ts';
import type { NewStep, RunRow, StepRow, Tx } from '../../store/store.ts';
import { guarded, runEffect, type TxEffects } from './effects.ts';
import { finishSteps, queueStep } from './finish.ts';
import { TransactionRace } from './settle.ts';
import type { Completion } from './types.ts';

export interface AddingItem {
  step: StepRow;
  c: Completion & { added: Additions };
}

export interface AdditionsOutcome {
  /** Completions whose additions were refused (by step key), and why: they fail. */
  refused: Map<string, SerializedError>;
  /** Adding steps now waiting for an added step's outputs (outputsFrom): not to be finished now. */
  waiting: Set<string>;
}

const OPEN: ReadonlySet<StepState> = new Set(['pending', 'queued', 'running']);

export const stepKey = (runId: string, name: string): string => `${runId}\u0000${name}`;

/** One accepted addition, as it will be written. */
interface Planned {
  item: AddingItem;
  rows: NewStep[];
}

/** What checkAdditions decided and read, for writeAdditions to apply. */
export interface CheckedAdditions {
  out: AdditionsOutcome;
  planned: Planned[];
  known: Map<string, StepRow>;
  fresh: Map<string, NewStep>;
}

/**
 * The additions of a batch, checked against the runs: which are refused (their attempts fail), and
 * what the accepted ones will write. Writes nothing but the run effects, so the attempts' rows can
 * be written next, from the adding steps' rows while those still say `running`; then
 * writeAdditions. `out.waiting` is filled by writeAdditions.
 */
export async function checkAdditions(tx: Tx, fx: TxEffects, items: readonly AddingItem[]): Promise<CheckedAdditions> {
  const out: AdditionsOutcome = { refused: new Map(), waiting: new Set() };
  if (items.length === 0) return { out, planned: [], known: new Map(), fresh: new Map() };

  // Reads, once for the batch: the runs (counts, bounds, cancellation) and every existing step the
  // additions name (their own names, dependencies and templates outside the added steps).
  const runs = new Map<string, RunRow>();
  const runIds = [...new Set(items.map((i) => i.step.runId))];
  // Lost that race once: this time the runs are locked before their counts are read, so the
  // count cannot change under this transaction (at the price of holding the run rows longer,
  // which may deadlock with a transaction holding one of the steps this one writes next; PostgreSQL
  // breaks such a deadlock and the store runs the transaction again).
  if (fx.rerun) await tx.lockRuns(runIds);
  for (const runId of runIds) {
    const run = await tx.getRun(runId);
    if (run) runs.set(runId, run);
  }
  const wanted = new Map<string, { runId: string; name: string }>();
  for (const { step, c } of items) {
    const inBatch = new Set(c.added.steps.map((s) => s.name));
    const want = (name: string): void => {
      if (!inBatch.has(name) || name === step.name) wanted.set(stepKey(step.runId, name), { runId: step.runId, name });
    };
    for (const s of c.added.steps) {
      want(s.name);
      for (const d of s.dependsOn) want(d);
      for (const t of findTemplates(s.inputs)) if (t.step) want(t.step);
    }
  }
  for (const { step } of items) wanted.delete(stepKey(step.runId, step.name));
  const known = new Map<string, StepRow>((await tx.getSteps([...wanted.values()])).map((r) => [stepKey(r.runId, r.name), r]));
  // The adding steps as this transaction holds them: their dependents are appended below, in place.
  for (const { step } of items) known.set(stepKey(step.runId, step.name), step);

  const planned: Planned[] = [];
  /** Steps added by this transaction so far, by key. */
  const fresh = new Map<string, NewStep>();
  const counts = new Map<string, number>();
  for (const item of items) {
    const { step, c } = item;
    const run = runs.get(step.runId);
    // A run being cancelled does not grow; its steps end cancelled anyway.
    if (!run || run.cancelRequested || step.cancelRequested) continue;
    const problems = checkAgainstRun(item, known, fresh);
    const base = counts.get(run.id) ?? run.stepsTotal;
    const max = run.maxSteps ?? DEFAULT_MAX_STEPS;
    if (problems.length === 0 && base + c.added.steps.length > max) {
      out.refused.set(
        stepKey(step.runId, step.name),
        new RunwardenError('MAX_STEPS_EXCEEDED', `adding ${c.added.steps.length} steps would bring run ${run.id} to ${base + c.added.steps.length} steps; its maxSteps is ${max}`, {
          data: { steps: base, adding: c.added.steps.length, maxSteps: max },
        }).toJSON(),
      );
      continue;
    }
    if (problems.length > 0) {
      out.refused.set(stepKey(step.runId, step.name), invalid(problems, 'STEPS_INVALID', 'the added steps').toJSON());
      continue;
    }
    counts.set(run.id, base + c.added.steps.length);
    const rows = c.added.steps.map((s, i) => newRow(s, step, c.added.outputsFrom, base + i));
    for (const r of rows) fresh.set(stepKey(r.runId, r.name), r);
    planned.push({ item, rows });
    const d = runEffect(fx, run.id);
    d.expectTotal ??= run.stepsTotal;
    d.stepsAdded += rows.length;
  }
  return { out, planned, known, fresh };
}

/** Writes the accepted additions of checkAdditions; adders that take an added step's outputs wait. */
export async function writeAdditions(tx: Tx, fx: TxEffects, checked: CheckedAdditions): Promise<void> {
  const { out, planned, known, fresh } = checked;
  if (planned.length === 0) return;

  // Each adding step must still be this attempt's: it waits now (outputsFrom), or gains the added
  // steps that depend on it as dependents, under its lease.
  const waiting = planned.filter((p) => p.item.c.added.outputsFrom !== null);
  const finishing = planned.filter((p) => p.item.c.added.outputsFrom === null);
  const waited = await tx.updateSteps(
    waiting.map(({ item: { step, c } }) =>
      guarded({
        runId: step.runId,
        name: step.name,
        expectStatus: ['running'],
        expectToken: c.token,
        patch: { status: 'pending', pendingDeps: 1, outputsFrom: c.added.outputsFrom, leaseToken: null, leaseExpiresAt: null, workerId: null, error: null },
      }),
    ),
  );
  const onAdder = (p: Planned): string[] => p.rows.filter((r) => r.dependsOn.includes(p.item.step.name)).map((r) => r.name);
  const owned = await tx.appendDependents(finishing.map((p) => ({ runId: p.item.step.runId, name: p.item.step.name, add: onAdder(p), expectToken: p.item.c.token })));
  if (waited.includes(false) || owned.includes(false)) throw new TransactionRace('a step adding steps lost its lease while they were written');
  for (const p of finishing) p.item.step.dependents = [...p.item.step.dependents, ...onAdder(p)];
  for (const p of waiting) {
    const { step, c } = p.item;
    out.waiting.add(stepKey(step.runId, step.name));
    fx.events.push({ runId: step.runId, stepName: step.name, attempt: c.attempt, type: 'step.awaiting', ts: fx.now, data: { step: c.added.outputsFrom } });
  }

  // Existing steps the new ones depend on and that have not ended (a step's own adder has them already).
  const appends = new Map<string, { row: StepRow; add: string[] }>();
  for (const { rows } of planned) {
    for (const r of rows) {
      for (const dep of r.dependsOn) {
        const k = stepKey(r.runId, dep);
        const row = known.get(k);
        if (!row || dep === r.addedBy || !OPEN.has(row.status)) continue;
        const a = appends.get(k) ?? { row, add: [] };
        a.add.push(r.name);
        appends.set(k, a);
      }
    }
  }
  const list = [...appends.values()];
  const appended = await tx.appendDependents(list.map(({ row, add }) => ({ runId: row.runId, name: row.name, add })));
  const ended = list.filter((_, i) => appended[i] !== true).map(({ row }) => ({ runId: row.runId, name: row.name }));
  list.forEach(({ row, add }, i) => {
    if (appended[i] === true) row.dependents = [...row.dependents, ...add];
  });
  // Ended between the read and the append (another transaction): as they are now.
  for (const r of await tx.getSteps(ended)) known.set(stepKey(r.runId, r.name), r);

  // Settle each new step's wait: dependencies that have not ended are counted; one that ended
  // without succeeding skips the step.
  const skipped: Array<{ row: NewStep; dep: string; status: StepState }> = [];
  for (const { rows } of planned) {
    for (const r of rows) {
      let pending = 0;
      let failedDep: { dep: string; status: StepState } | null = null;
      for (const dep of r.dependsOn) {
        const k = stepKey(r.runId, dep);
        const row = fresh.get(k) ?? known.get(k);
        const status = fresh.has(k) ? 'pending' : (row as StepRow).status;
        if (OPEN.has(status)) {
          pending++;
          const newer = fresh.get(k);
          if (newer && !newer.dependents.includes(r.name)) newer.dependents.push(r.name);
        } else if (status !== 'succeeded') failedDep ??= { dep, status };
      }
      r.pendingDeps = pending;
      if (failedDep) skipped.push({ row: r, ...failedDep });
    }
  }
  const all = planned.flatMap((p) => p.rows);
  await tx.insertSteps(all);
  for (const { item, rows } of planned) {
    for (const r of rows) {
      fx.events.push({
        runId: r.runId,
        stepName: r.name,
        type: 'step.added',
        ts: fx.now,
        data: { tool: r.tool, dependsOn: r.dependsOn, addedBy: item.step.name, attempt: item.c.attempt, ...(r.outputsFrom ? { outputsFrom: r.outputsFrom } : {}) },
      });
    }
  }

  const skippedNames = new Set(skipped.map((s) => stepKey(s.row.runId, s.row.name)));
  await finishSteps(
    tx,
    fx,
    skipped.map(({ row, dep, status }) => ({
      step: stepRow(row),
      status: 'skipped' as const,
      opts: { from: ['pending'] as const, error: { code: 'UPSTREAM_NOT_SUCCEEDED', message: `upstream step "${dep}" ended ${status}`, retryable: false } },
    })),
  );
  // Ready at once (nothing to wait for): queued now, their templates resolved from steps that succeeded.
  for (const r of all) {
    if (r.pendingDeps === 0 && !skippedNames.has(stepKey(r.runId, r.name))) await queueStep(tx, fx, stepRow(r), new Map());
  }
}

/** The problems only the run can tell: names taken, dependencies and templates naming steps it lacks. */
function checkAgainstRun(item: AddingItem, known: ReadonlyMap<string, StepRow>, fresh: ReadonlyMap<string, NewStep>): ErrorDetail[] {
  const { step, c } = item;
  const problems: ErrorDetail[] = [];
  const batch = new Map(c.added.steps.map((s) => [s.name, s]));
  const exists = (name: string): boolean => known.has(stepKey(step.runId, name)) || fresh.has(stepKey(step.runId, name));
  for (const s of c.added.steps) {
    if (exists(s.name)) problems.push({ code: 'DUPLICATE_STEP', path: `steps.${s.idx}.name`, message: `run already has a step named "${s.name}"` });
    for (const dep of s.dependsOn) {
      if (!batch.has(dep) && !exists(dep)) {
        problems.push({ code: 'UNKNOWN_DEPENDENCY', path: `steps.${s.idx}.dependsOn`, message: `step "${s.name}" depends on unknown step "${dep}"` });
      }
    }
  }
  for (const s of c.added.steps) {
    const upstream = outsideUpstream(s, batch);
    for (const t of findTemplates(s.inputs)) {
      if (!t.step || batch.has(t.step)) continue;
      const path = `steps.${s.idx}.inputs.${t.path}`;
      const row = known.get(stepKey(step.runId, t.step));
      if (!row && !fresh.has(stepKey(step.runId, t.step))) {
        problems.push({ code: 'BAD_TEMPLATE', path, message: `{{${t.expr}}} refers to unknown step "${t.step}"` });
      } else if (row?.status !== 'succeeded' && !upstream.has(t.step)) {
        problems.push({ code: 'BAD_TEMPLATE', path, message: `{{${t.expr}}}: step "${t.step}" is neither upstream of "${s.name}" nor succeeded; add it to dependsOn` });
      }
    }
  }
  return problems;
}

/** The steps outside the batch that `s` depends on, directly or through other added steps. */
function outsideUpstream(s: ValidatedStep, batch: ReadonlyMap<string, ValidatedStep>): Set<string> {
  const out = new Set<string>();
  const seen = new Set<string>();
  const queue = [...s.dependsOn];
  for (let i = 0; i < queue.length; i++) {
    const name = queue[i] as string;
    if (seen.has(name)) continue;
    seen.add(name);
    const inner = batch.get(name);
    if (inner) queue.push(...inner.dependsOn);
    else out.add(name);
  }
  return out;
}

function newRow(s: ValidatedStep, adder: StepRow, outputsFrom: string | null, idx: number): NewStep {
  return {
    runId: adder.runId,
    name: s.name,
    idx,
    tool: s.tool,
    status: 'pending',
    dependsOn: s.dependsOn,
    // The batch's own edges; the adding step waits on the step it takes its outputs from.
    dependents: [...s.dependents, ...(outputsFrom === s.name ? [adder.name] : [])],
    inputs: s.inputs,
    resolvedInputs: null,
    pendingDeps: 0,
    timeoutMs: s.timeoutMs,
    retries: s.retries,
    readyAt: null,
    addedBy: adder.name,
    outputsFrom: null,
    // Added steps run under their adder's priority and concurrency key unless they say their own.
    flow: flowOf(s, adder),
  };
}

/** A step this transaction inserted, as a read would return it. */
function stepRow(n: NewStep): StepRow {
  return {
    runId: n.runId,
    name: n.name,
    idx: n.idx,
    tool: n.tool,
    status: n.status,
    dependsOn: n.dependsOn,
    dependents: n.dependents,
    pendingDeps: n.pendingDeps,
    inputs: n.inputs,
    resolvedInputs: n.resolvedInputs,
    outputs: null,
    error: null,
    timeoutMs: n.timeoutMs,
    retries: n.retries,
    attempts: 0,
    lostAttempts: 0,
    readyAt: null,
    startedAt: null,
    finishedAt: null,
    addedBy: n.addedBy ?? null,
    outputsFrom: n.outputsFrom ?? null,
    priority: n.flow?.priority ?? 0,
    concurrency: n.flow?.concurrency ?? null,
    queueTimeoutMs: n.flow?.queueTimeoutMs ?? null,
    waitingFor: null,
    awaitingSignal: null,
    awaitingSince: null,
    reusedFrom: null,
    workerId: null,
    leaseToken: null,
    leaseExpiresAt: null,
    deadlineAt: null,
    cancelRequested: false,
  };
}
