/**
 * The `agent` tool: a tool-calling loop whose every model turn and every tool call is a step of the
 * run, added at runtime (docs/dynamic-runs.md#the-agent-tool). Nothing of the loop lives in memory
 * between turns, so a crash or a redeploy resumes it at the turn that had not finished:
 *
 *   agent ──outputsFrom──> <agent>-turn-1 ──outputsFrom──> <agent>-turn-2 ... <agent>-turn-N (answers)
 *                           adds <agent>-call-1-1 ...       (depends on turn 1's calls)
 *
 * The agent step checks its inputs and adds turn 1. A turn (`agent.turn`) makes one model call with
 * the conversation so far; when the model calls tools it adds one step per call (the named tool,
 * the model's arguments as inputs) and the next turn, which depends on them and receives their
 * outputs through templates. The turn that answers returns the agent's outputs, which reach the
 * agent step back along the chain of outputsFrom. What a model or a tool said goes into the next
 * turn's inputs through `literal()`, so text holding `{{` is never read as a template.
 */
import { z } from 'zod';
import { RunwardenError } from '../domain/errors.ts';
import type { PlanStep } from '../domain/plan-format.ts';
import { literal } from '../domain/templates.ts';
import { withoutStacks } from '../forensics/ops.ts';
import { callOptionsFor } from '../llm/call-options.ts';
import type { ProviderRegistry } from '../llm/registry.ts';
import type { ChatMessage, ToolCall, ToolSpec } from '../llm/types.ts';
import type { ToolRegistry } from './registry.ts';
import { defineTool, type ToolContext, type ToolDefinition } from './types.ts';

export const AGENT_TOOL = 'agent';
export const TURN_TOOL = 'agent.turn';
/** @default 10 */
export const DEFAULT_MAX_TURNS = 10;

const plainMessage = z.strictObject({ role: z.enum(['system', 'user', 'assistant']), content: z.string() });
const retries = z.strictObject({ max: z.number().int().min(0).max(100).optional(), backoffMs: z.number().int().min(0).optional(), maxBackoffMs: z.number().int().min(0).optional() });

/** What every turn of one agent carries unchanged. */
const settings = {
  /** Names of the tools the model may call: tools of the worker. @default none (the model only answers) */
  tools: z.array(z.string().min(1)).max(128).default([]),
  /** The most model turns; a model still calling tools at the last one fails it with AGENT_MAX_TURNS. */
  maxTurns: z.number().int().min(1).max(1000).default(DEFAULT_MAX_TURNS),
  provider: z.string().min(1).optional(),
  model: z.string().min(1).optional(),
  maxTokens: z.number().int().positive().optional(),
  temperature: z.number().min(0).max(2).optional(),
  /** @default true */
  stream: z.boolean().optional(),
  /** Deadline of each model turn. @default the server's defaultTimeoutMs */
  turnTimeoutMs: z.number().int().positive().optional(),
  /** Deadline of each tool call. @default the tool's own timeoutMs, else the server's default */
  toolTimeoutMs: z.number().int().positive().optional(),
  /** Retries of each model turn, as a plan step's `retries`. */
  turnRetries: retries.optional(),
};

export const agentInput = z
  .strictObject({
    prompt: z.string().min(1).optional(),
    messages: z.array(plainMessage).min(1).optional(),
    /** Prepended as a system message. */
    system: z.string().min(1).optional(),
    ...settings,
  })
  .refine((v) => (v.prompt === undefined) !== (v.messages === undefined), { message: 'give exactly one of "prompt" or "messages"' });

export type AgentInput = z.infer<typeof agentInput>;

const toolCall = z.strictObject({ id: z.string(), name: z.string(), arguments: z.string() });
const chatMessage = z.union([
  z.strictObject({ role: z.enum(['system', 'user']), content: z.string() }),
  z.strictObject({ role: z.literal('assistant'), content: z.string(), toolCalls: z.array(toolCall).optional() }),
  z.strictObject({ role: z.literal('tool'), toolCallId: z.string(), content: z.string() }),
]);
const usage = z.strictObject({ inputTokens: z.number().int().min(0), outputTokens: z.number().int().min(0), calls: z.number().int().min(0) });

const turnInput = z.strictObject({
  /** The agent step: the prefix of the steps the turns add. */
  agent: z.string().min(1),
  turn: z.number().int().min(1),
  messages: z.array(chatMessage).min(1),
  /** The previous turn's tool calls: each one's output (a template until the turn is queued) or why it did not run. */
  results: z.array(z.strictObject({ id: z.string(), name: z.string(), output: z.unknown().optional(), error: z.string().optional() })),
  usage,
  toolCalls: z.number().int().min(0),
  ...settings,
});

type TurnInput = z.infer<typeof turnInput>;
type Settings = Omit<TurnInput, 'agent' | 'turn' | 'messages' | 'results' | 'usage' | 'toolCalls'>;

export interface AgentOutput {
  text: string;
  /** Model turns taken, the answering one included. */
  turns: number;
  /** Tool calls made over all turns. */
  toolCalls: number;
  finishReason: string | null;
  model: string;
  provider: string;
  /** Summed over the agent's turns. */
  usage: { inputTokens: number; outputTokens: number; calls: number };
}

export interface AgentToolDeps {
  providers: ProviderRegistry;
  /** The worker's tools: the names an agent may call, their descriptions and input schemas. */
  tools: ToolRegistry;
}

/** The agent tool and the tool of its turns. */
export function createAgentTools(deps: AgentToolDeps): ToolDefinition[] {
  const agent = defineTool({
    name: AGENT_TOOL,
    description: 'A tool-calling loop: each model turn and each tool call is a step of the run, added as the model asks for it.',
    input: agentInput,
    run: (ctx, input) => {
      checkToolNames(input.tools, deps.tools);
      const messages: ChatMessage[] = [];
      if (input.system !== undefined) messages.push({ role: 'system', content: input.system });
      if (input.messages) messages.push(...input.messages);
      else if (input.prompt !== undefined) messages.push({ role: 'user', content: input.prompt });
      const { prompt: _p, messages: _m, system: _s, ...rest } = input;
      const first = turnStep(ctx.stepName, 1, { ...rest, messages, results: [], usage: { inputTokens: 0, outputTokens: 0, calls: 0 }, toolCalls: 0 }, []);
      ctx.addSteps([first], { outputsFrom: first.name });
      return {};
    },
  });

  const turn = defineTool({
    name: TURN_TOOL,
    description: 'One model turn of an agent (added by the agent tool): answers, or calls tools and adds the next turn.',
    input: turnInput,
    run: async (ctx, input): Promise<AgentOutput | Record<string, never>> => {
      checkToolNames(input.tools, deps.tools);
      const provider = deps.providers.get(input.provider);
      const messages: ChatMessage[] = [...input.messages];
      for (const r of input.results) {
        const content = r.error !== undefined ? JSON.stringify({ error: r.error }) : typeof r.output === 'string' ? r.output : JSON.stringify(r.output ?? null);
        messages.push({ role: 'tool', toolCallId: r.id, content });
      }
      const res = await withoutStacks(() =>
        ctx.track(
          `llm.chat ${provider.name} (agent turn ${input.turn})`,
          provider.chat(
            { messages, tools: toolSpecs(input.tools, deps.tools), model: input.model, stream: input.stream ?? true, maxTokens: input.maxTokens, temperature: input.temperature },
            callOptionsFor(ctx),
          ),
        ),
      );
      const used = {
        inputTokens: input.usage.inputTokens + res.usage.inputTokens,
        outputTokens: input.usage.outputTokens + res.usage.outputTokens,
        calls: input.usage.calls + 1,
      };
      if (res.toolCalls.length === 0) {
        return { text: res.text, turns: input.turn, toolCalls: input.toolCalls, finishReason: res.finishReason, model: res.model, provider: res.provider, usage: used };
      }
      if (input.turn >= input.maxTurns) {
        throw new RunwardenError('AGENT_MAX_TURNS', `the model still called tools (${res.toolCalls.map((c) => c.name).join(', ')}) at turn ${input.turn}, the last of maxTurns ${input.maxTurns}`, {
          data: { maxTurns: input.maxTurns, toolCalls: res.toolCalls.map((c) => c.name) },
        });
      }
      await addNextTurn(ctx, input, deps.tools, [...messages, { role: 'assistant', content: res.text, toolCalls: res.toolCalls }], res.toolCalls, used);
      return {};
    },
  });
  return [agent, turn];
}

/** The tool-call steps of this turn's calls and the next turn, which takes their outputs. */
async function addNextTurn(ctx: ToolContext, input: TurnInput, tools: ToolRegistry, messages: ChatMessage[], calls: ToolCall[], used: TurnInput['usage']): Promise<void> {
  const steps: PlanStep[] = [];
  const results: TurnInput['results'] = [];
  for (const [i, call] of calls.entries()) {
    // A call the worker cannot make goes back to the model as an error result, so it can correct
    // itself; it does not fail the agent.
    const refused = await refusal(call, input.tools, tools);
    if (typeof refused === 'string') {
      results.push({ id: call.id, name: call.name, error: refused });
      continue;
    }
    const name = `${input.agent}-call-${input.turn}-${i + 1}`;
    steps.push({ name, tool: call.name, inputs: literal(refused), ...(input.toolTimeoutMs !== undefined ? { timeoutMs: input.toolTimeoutMs } : {}) });
    results.push({ id: call.id, name: call.name, output: `{{steps.${name}.outputs}}` });
  }
  const { agent, turn, messages: _m, results: _r, usage: _u, toolCalls, ...rest } = input;
  const next = turnStep(agent, turn + 1, { ...rest, messages, results, usage: used, toolCalls: toolCalls + calls.length }, steps.map((s) => s.name));
  ctx.addSteps([...steps, next], { outputsFrom: next.name });
}

/** Why a call cannot be made (unknown tool, arguments that are not an object or fail its schema), or its arguments. */
async function refusal(call: ToolCall, allowed: string[], tools: ToolRegistry): Promise<string | Record<string, unknown>> {
  if (!allowed.includes(call.name)) return `no tool "${call.name}": the tools are ${allowed.join(', ') || '(none)'}`;
  let args: unknown;
  try {
    args = JSON.parse(call.arguments);
  } catch (err) {
    return `the arguments are not JSON: ${(err as Error).message}`;
  }
  if (args === null || typeof args !== 'object' || Array.isArray(args)) return 'the arguments must be a JSON object';
  const checked = await tools.validate(call.name, args);
  if (!checked.ok) return `the arguments do not fit ${call.name}'s input schema: ${checked.issues.map((x) => `${x.path || '(root)'}: ${x.message}`).join('; ')}`;
  return args as Record<string, unknown>;
}

function turnStep(agent: string, turn: number, state: Settings & Pick<TurnInput, 'messages' | 'results' | 'usage' | 'toolCalls'>, dependsOn: string[]): PlanStep {
  const { results, ...rest } = state;
  // Results keep their templates; every other text is written literally.
  const inputs = { ...literal({ agent, turn, ...rest }), results: results.map((r) => ({ ...literal({ id: r.id, name: r.name }), ...(r.error !== undefined ? { error: literal(r.error) } : { output: r.output }) })) };
  return {
    name: `${agent}-turn-${turn}`,
    tool: TURN_TOOL,
    dependsOn,
    inputs,
    ...(state.turnTimeoutMs !== undefined ? { timeoutMs: state.turnTimeoutMs } : {}),
    ...(state.turnRetries !== undefined ? { retries: state.turnRetries } : {}),
  };
}

function checkToolNames(names: string[], tools: ToolRegistry): void {
  const unknown = names.filter((n) => !tools.has(n) || n === TURN_TOOL);
  if (unknown.length > 0) {
    throw new RunwardenError('AGENT_TOOL_UNKNOWN', `the agent names tools this worker does not have: ${unknown.join(', ')} (known: ${tools.names().filter((n) => n !== TURN_TOOL).join(', ')})`, {
      data: { unknown },
    });
  }
}

/** The tools as the model is offered them: name, description, and the input schema as parameters. */
function toolSpecs(names: string[], tools: ToolRegistry): ToolSpec[] {
  return names.map((name) => {
    const def = tools.get(name);
    return { name, ...(def?.description !== undefined ? { description: def.description } : {}), parameters: tools.parameters(name) };
  });
}
