/**
 * Input templates: `"{{steps.<name>.outputs.<json.path>}}"`. A string that is exactly one template
 * takes the referenced value with its JSON type; templates inside a longer string are interpolated
 * as text (objects as JSON). `{{lbrace}}` stands for a literal `{`: it is how text that holds `{{`
 * is put into inputs without being read as a template (`literal()` does it for a whole value).
 */
import { RunwardenError } from './errors.ts';

const TEMPLATE = /\{\{\s*([^{}]*?)\s*\}\}/g;
const REF = /^steps\.([A-Za-z0-9_-]+)\.outputs((?:\.[A-Za-z0-9_$-]+|\[\d+\])*)$/;

export interface TemplateRef {
  /** Where in the inputs the template sits, e.g. `prompt` or `messages.0.content`. */
  path: string;
  expr: string;
  step: string | null;
  /** Keys below `outputs`; empty for the whole output. */
  keys: string[];
  /** Why the expression is not a valid reference, when it is not. */
  problem: string | null;
  /** `{{lbrace}}`: a literal `{`, not a reference. */
  literal?: boolean;
}

/** The expression of `{{lbrace}}`, a literal `{`. */
const LBRACE = 'lbrace';

export function parseRef(expr: string): { step: string; keys: string[] } | null {
  const m = REF.exec(expr);
  if (!m || m[1] === undefined) return null;
  const rest = m[2] ?? '';
  const keys = [...rest.matchAll(/\.([A-Za-z0-9_$-]+)|\[(\d+)\]/g)].map((k) => (k[1] ?? k[2]) as string);
  return { step: m[1], keys };
}

/**
 * Every template in a JSON value, with its location, in document order. Walks with an explicit
 * stack: inputs come from clients, and a recursive walk of a body nested ~1,600 deep overflowed.
 */
export function findTemplates(value: unknown, path: string[] = []): TemplateRef[] {
  const out: TemplateRef[] = [];
  const stack: Array<{ value: unknown; path: string[] }> = [{ value, path }];
  while (stack.length > 0) {
    const top = stack.pop() as { value: unknown; path: string[] };
    const v = top.value;
    if (typeof v === 'string') {
      for (const m of v.matchAll(TEMPLATE)) {
        const expr = (m[1] ?? '').trim();
        if (expr === LBRACE) {
          out.push({ path: top.path.join('.'), expr, step: null, keys: [], problem: null, literal: true });
          continue;
        }
        const ref = parseRef(expr);
        out.push({
          path: top.path.join('.'),
          expr,
          step: ref?.step ?? null,
          keys: ref?.keys ?? [],
          problem: ref ? null : `"{{${expr}}}" is not of the form {{steps.<name>.outputs.<path>}}`,
        });
      }
    } else if (v !== null && typeof v === 'object') {
      const entries = Array.isArray(v) ? v.map((x, i) => [String(i), x] as const) : Object.entries(v);
      // Pushed in reverse so that they pop in order.
      for (let i = entries.length - 1; i >= 0; i--) {
        const [k, child] = entries[i] as readonly [string, unknown];
        stack.push({ value: child, path: [...top.path, k] });
      }
    }
  }
  return out;
}

export function hasTemplate(value: string): boolean {
  TEMPLATE.lastIndex = 0;
  return TEMPLATE.test(value);
}

/**
 * `value` with every string that holds `{{` written so that it resolves to itself: each `{` of it
 * becomes `{{lbrace}}`. For text a step did not write as templates (a model's answer, a tool's
 * output) put into the inputs of steps added at runtime. Keys are never read as templates.
 */
export function literal<T>(value: T): T {
  if (typeof value === 'string') return (value.includes('{{') ? value.replaceAll('{', `{{${LBRACE}}}`) : value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => literal(v)) as T;
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, literal(v)])) as T;
  return value;
}

function lookup(outputs: unknown, keys: string[]): { found: boolean; value: unknown } {
  let cur: unknown = outputs;
  for (const k of keys) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, k)) return { found: false, value: undefined };
    cur = (cur as Record<string, unknown>)[k];
  }
  return { found: true, value: cur };
}

/**
 * Replace templates using upstream outputs. Throws TEMPLATE_UNRESOLVED (not retryable) when a
 * referenced path does not exist in the upstream output.
 */
export function resolveTemplates<T>(value: T, outputsOf: (step: string) => unknown): T {
  return resolveValue(value, outputsOf) as T;
}

function resolveValue(value: unknown, outputsOf: (step: string) => unknown): unknown {
  if (typeof value === 'string') return resolveString(value, outputsOf);
  if (Array.isArray(value)) return value.map((v) => resolveValue(v, outputsOf));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveValue(v, outputsOf)]));
  }
  return value;
}

function resolveOne(expr: string, outputsOf: (step: string) => unknown): unknown {
  if (expr === LBRACE) return '{';
  const ref = parseRef(expr);
  if (!ref) throw new RunwardenError('TEMPLATE_UNRESOLVED', `bad template {{${expr}}}`);
  const { found, value } = lookup(outputsOf(ref.step), ref.keys);
  if (!found) {
    throw new RunwardenError(
      'TEMPLATE_UNRESOLVED',
      `{{${expr}}}: step "${ref.step}" has no output at "${ref.keys.join('.') || '(root)'}"`,
      { retryable: false },
    );
  }
  return value;
}

function resolveString(s: string, outputsOf: (step: string) => unknown): unknown {
  const whole = /^\{\{\s*([^{}]*?)\s*\}\}$/.exec(s);
  if (whole) return resolveOne((whole[1] ?? '').trim(), outputsOf);
  if (!s.includes('{{')) return s;
  return s.replace(TEMPLATE, (_m, expr: string) => {
    const v = resolveOne(expr.trim(), outputsOf);
    return typeof v === 'string' ? v : JSON.stringify(v);
  });
}
