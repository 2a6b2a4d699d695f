/**
 * The tools a worker can run and the API can validate plans against. Input schemas may be a
 * Standard Schema (zod, valibot, ...) or a plain JSON Schema object (compiled once with Ajv).
 */
import { Ajv, type ValidateFunction } from 'ajv';
import { RunwardenError } from '../domain/errors.ts';
import { isStandardSchema, type StandardIssue } from './standard-schema.ts';
import type { ToolDefinition, ToolIsolation } from './types.ts';

export interface InputIssue {
  /** Dot path inside the inputs ('' for the root). */
  path: string;
  message: string;
}

interface Entry {
  def: ToolDefinition;
  jsonSchema: ValidateFunction | null;
  isolation: ToolIsolation;
  /** Absolute path of the tools module it came from (a thread imports it from there). */
  module: string | undefined;
}

/** What a registered tool is, for listings (`GET /tools`) and worker start-up lines. */
export interface ToolInfo {
  name: string;
  description?: string;
  isolation: ToolIsolation;
  timeoutMs?: number;
  module?: string;
}

const ISOLATIONS: readonly ToolIsolation[] = ['thread', 'inline'];

const NAME = /^[A-Za-z][A-Za-z0-9_.:-]{0,63}$/;

export class ToolRegistry {
  readonly #tools = new Map<string, Entry>();
  readonly #ajv = new Ajv({ allErrors: true, strict: false });

  /**
   * `module`: the tools module the definition came from; `isolation`: how a tool from a module runs
   * when it does not say (the `toolIsolation` setting). Tools without a module run inline.
   */
  register(def: ToolDefinition, opts: { replace?: boolean; module?: string; isolation?: ToolIsolation } = {}): void {
    if (typeof def !== 'object' || def === null || typeof def.name !== 'string' || typeof def.run !== 'function') {
      throw new RunwardenError('TOOL_INVALID', 'a tool needs a string `name` and a `run(ctx, input)` function');
    }
    if (!NAME.test(def.name)) {
      throw new RunwardenError('TOOL_INVALID', `tool name ${JSON.stringify(def.name)} must match ${NAME}`);
    }
    if (this.#tools.has(def.name) && !opts.replace) {
      throw new RunwardenError('TOOL_DUPLICATE', `tool "${def.name}" is registered twice`);
    }
    if (def.isolation !== undefined && !ISOLATIONS.includes(def.isolation)) {
      throw new RunwardenError('TOOL_INVALID', `tool "${def.name}": isolation must be one of ${ISOLATIONS.join(', ')}`, { status: 400 });
    }
    if (def.isolation === 'thread' && opts.module === undefined) {
      throw new RunwardenError('TOOL_INVALID', `tool "${def.name}" asks for isolation 'thread', which needs it to be loaded from a tools module (--tools / "tools" in the config)`, {
        status: 400,
      });
    }
    const isolation: ToolIsolation = opts.module === undefined ? 'inline' : (def.isolation ?? opts.isolation ?? 'thread');
    let jsonSchema: ValidateFunction | null = null;
    if (def.input !== undefined && !isStandardSchema(def.input)) {
      try {
        jsonSchema = this.#ajv.compile(def.input);
      } catch (err) {
        throw new RunwardenError('TOOL_INVALID', `tool "${def.name}": input is not a valid JSON Schema: ${(err as Error).message}`, { cause: err,
        });
      }
    }
    this.#tools.set(def.name, { def, jsonSchema, isolation, module: opts.module });
  }

  isolation(name: string): ToolIsolation | undefined {
    return this.#tools.get(name)?.isolation;
  }

  /** The tools modules a tool thread must load: those of every tool that runs in a thread. */
  threadModules(): string[] {
    const out = new Set<string>();
    for (const e of this.#tools.values()) if (e.isolation === 'thread' && e.module !== undefined) out.add(e.module);
    return [...out];
  }

  info(): ToolInfo[] {
    return this.names().map((name) => {
      const e = this.#tools.get(name) as Entry;
      return {
        name,
        ...(e.def.description !== undefined ? { description: e.def.description } : {}),
        isolation: e.isolation,
        ...(e.def.timeoutMs !== undefined ? { timeoutMs: e.def.timeoutMs } : {}),
        ...(e.module !== undefined ? { module: e.module } : {}),
      };
    });
  }

  get(name: string): ToolDefinition | undefined {
    return this.#tools.get(name)?.def;
  }

  has(name: string): boolean {
    return this.#tools.has(name);
  }

  names(): string[] {
    return [...this.#tools.keys()].sort();
  }

  /**
   * The tool's input schema as a JSON Schema (what a model is offered as the tool's parameters): a
   * JSON Schema input as it is; a Standard Schema through its JSON Schema converter when it has one
   * (`~standard.jsonSchema`: zod 4.2 and later); otherwise, or with no input schema, any object.
   */
  parameters(name: string): Record<string, unknown> {
    const schema = this.#tools.get(name)?.def.input;
    if (schema === undefined) return { type: 'object' };
    if (!isStandardSchema(schema)) return schema;
    const convert = (schema['~standard'] as { jsonSchema?: { input?: (o: { target: string }) => unknown } }).jsonSchema?.input;
    if (typeof convert !== 'function') return { type: 'object' };
    try {
      const out = convert({ target: 'draft-2020-12' });
      if (out === null || typeof out !== 'object' || Array.isArray(out)) return { type: 'object' };
      const { $schema: _drop, ...rest } = out as Record<string, unknown>;
      return rest;
    } catch (err) {
      // A schema the converter cannot express (a transform, a custom check): the model gets any
      // object, and the tool's own validation still applies when the call runs.
      void err;
      return { type: 'object' };
    }
  }

  /**
   * Validate inputs. Returns the (possibly transformed, e.g. defaults applied) value or the issues.
   */
  async validate(name: string, input: unknown): Promise<{ ok: true; value: unknown } | { ok: false; issues: InputIssue[] }> {
    const entry = this.#tools.get(name);
    if (!entry) return { ok: false, issues: [{ path: '', message: `unknown tool "${name}"` }] };
    const schema = entry.def.input;
    if (schema === undefined) return { ok: true, value: input };
    if (isStandardSchema(schema)) {
      const result = await schema['~standard'].validate(input);
      if (result.issues) return { ok: false, issues: result.issues.map(standardIssue) };
      return { ok: true, value: result.value };
    }
    const validate = entry.jsonSchema;
    if (validate && !validate(input)) {
      return {
        ok: false,
        issues: (validate.errors ?? []).map((e) => ({
          path: e.instancePath.replace(/^\//, '').replaceAll('/', '.'),
          message: e.message ?? 'invalid',
        })),
      };
    }
    return { ok: true, value: input };
  }
}

function standardIssue(issue: StandardIssue): InputIssue {
  const path = (issue.path ?? []).map((p) => String(typeof p === 'object' ? p.key : p)).join('.');
  return { path, message: issue.message };
}
