/**
 * Query-string validation. Every query parameter is a string on the wire; these schemas coerce and
 * bound them, reject unknown names (a typo such as `?stauts=` would otherwise silently return
 * everything) and turn every problem into one 400 `INVALID_QUERY` with a detail per parameter.
 */
import { z } from 'zod';
import { MAX_INLINE_STEPS } from '../domain/records.ts';
import { RUN_STATES } from '../domain/states.ts';
import { storableText, textProblem } from '../domain/text.ts';
import type { ListRunsQuery } from '../engine/facade.ts';
import { httpError } from './errors.ts';

const intString = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a non-negative integer')
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const label = z
  .string()
  .regex(/^[^:=]+[:=].*$/, 'must be key:value or key=value')
  .transform((s) => {
    const i = s.search(/[:=]/);
    return { key: s.slice(0, i), value: s.slice(i + 1) };
  });

export const MAX_RUNS_PAGE = 500;
export const MAX_EVENTS_PAGE = 10_000;
export const DEFAULT_EVENTS_PAGE = 500;

/**
 * An ISO 8601 date (midnight UTC) or time with its zone (`2025-03-04`, `2025-03-04T12:00:00Z`,
 * `...+02:00`), as epoch ms. A time without a zone is refused: the server's zone is not the
 * client's.
 */
const isoTime = z
  .string()
  .regex(/^\d{4}-\d\d-\d\d(T\d\d:\d\d(:\d\d(\.\d{1,3})?)?(Z|[+-]\d\d:\d\d))?$/, 'must be an ISO 8601 date or a time with its zone, such as 2025-03-04 or 2025-03-04T12:00:00Z')
  .transform((s) => Date.parse(s))
  .pipe(z.number({ message: 'must be a valid date' }).int());

export const listRunsQuery = z.strictObject({
  status: z.enum(RUN_STATES).optional(),
  label: label.optional(),
  createdAfter: isoTime.optional(),
  createdBefore: isoTime.optional(),
  goal: z.string().min(1).max(1000).optional(),
  tool: z.string().min(1).max(64).optional(),
  cursor: z.string().min(1).max(1000).optional(),
  limit: intString(1, MAX_RUNS_PAGE).optional(),
});

export const listStepsQuery = z.strictObject({
  after: intString(0, Number.MAX_SAFE_INTEGER).optional(),
  limit: intString(1, MAX_INLINE_STEPS).optional(),
});

export const listEventsQuery = z.strictObject({
  after: intString(0, Number.MAX_SAFE_INTEGER).optional(),
  limit: intString(1, MAX_EVENTS_PAGE).optional(),
});

export const streamEventsQuery = z.strictObject({
  after: intString(0, Number.MAX_SAFE_INTEGER).optional(),
});

export const noQuery = z.strictObject({});

export function parseQuery<T extends z.ZodType>(schema: T, query: unknown): z.output<T> {
  const textIssues = Object.entries((query ?? {}) as Record<string, unknown>).flatMap(([name, value]) => {
    const values = Array.isArray(value) ? value : [value];
    const problem = values.map((v) => (typeof v === 'string' ? textProblem(v) : null)).find((p) => p !== null);
    const nameProblem = textProblem(name);
    return problem || nameProblem
      ? [{ code: 'INVALID_PARAMETER', path: storableText(name), message: `${storableText(name)}: ${nameProblem ?? problem}` }]
      : [];
  });
  if (textIssues.length > 0) throw httpError('INVALID_QUERY', 'invalid query parameters', textIssues);
  const result = schema.safeParse(query ?? {});
  if (result.success) return result.data;
  const details = result.error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return { code: 'UNKNOWN_PARAMETER', path: issue.keys.join(','), message: `unknown query parameter(s): ${issue.keys.join(', ')}` };
    }
    const path = issue.path.map(String).join('.');
    const message = issue.code === 'invalid_type' && issue.expected === 'string' ? 'must be given once, as a single value' : issue.message;
    return { code: 'INVALID_PARAMETER', path, message: `${path}: ${message}` };
  });
  throw httpError('INVALID_QUERY', 'invalid query parameters', details);
}

export function toListRunsQuery(q: z.output<typeof listRunsQuery>): ListRunsQuery {
  const out: ListRunsQuery = {};
  if (q.status !== undefined) out.status = q.status;
  if (q.label !== undefined) out.label = q.label;
  if (q.createdAfter !== undefined) out.createdAfter = q.createdAfter;
  if (q.createdBefore !== undefined) out.createdBefore = q.createdBefore;
  if (q.goal !== undefined) out.goal = q.goal;
  if (q.tool !== undefined) out.tool = q.tool;
  if (q.cursor !== undefined) out.cursor = q.cursor;
  if (q.limit !== undefined) out.limit = q.limit;
  return out;
}
