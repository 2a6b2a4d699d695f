/**
 * The built-in tools as typed references for `definePlan` (`builtins.llm`, `builtins.sleep`, ...):
 * their names with their input and output types, so a plan in code gets the same checks for them
 * as for its own tools. The types are written out here (the definitions' own types reach into the
 * engine and Node); test/types/public.ts checks that they match the definitions.
 */
import { toolRef, type ToolReference } from '../tools/types.ts';

export interface ChatMessageInput {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** Inputs of `llm`: exactly one of `prompt` or `messages`. */
export interface LlmToolInput {
  prompt?: string;
  messages?: ChatMessageInput[];
  /** Prepended as a system message. */
  system?: string;
  model?: string;
  /** A provider name from the configuration, `openai`, `anthropic` or `lab`. @default the default provider */
  provider?: string;
  /** @default true */
  stream?: boolean;
  maxTokens?: number;
  temperature?: number;
}

export interface LlmToolOutput {
  text: string;
  model: string;
  provider: string;
  usage: { inputTokens: number; outputTokens: number };
  finishReason: string | null;
}

export interface HttpToolInput {
  url: string;
  /** @default 'GET' */
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD';
  headers?: Record<string, string>;
  body?: unknown;
  /** Fail the step on a non-2xx status. @default true */
  failOnStatus?: boolean;
}

export interface HttpToolOutput {
  status: number;
  headers: Record<string, string>;
  /** Parsed JSON when the response says it is JSON, else the text. */
  body: unknown;
  durationMs: number;
}

export const builtins = Object.freeze({
  echo: toolRef<Record<string, unknown>, Record<string, unknown>>('echo'),
  sleep: toolRef<{ ms: number; [key: string]: unknown }, { sleptMs: number }>('sleep'),
  http: toolRef<HttpToolInput, HttpToolOutput>('http'),
  llm: toolRef<LlmToolInput, LlmToolOutput>('llm'),
  /** Waits for a signal sent to the run; its outputs are the signal's payload (docs/waits-and-reruns.md). */
  wait: toolRef<{ signal: string; timeoutMs: number }, unknown>('wait'),
}) satisfies Record<string, ToolReference>;
