/**
 * What a chat request says about the conversation it continues, in either wire format: which turn
 * it is (one more than the assistant messages it carries), the tools it offers and how many tool
 * results it sends back. The lab keeps no state per conversation: a retried request for turn 3 is
 * turn 3 again, so a client that resumes mid-agent gets the answer it would have got.
 */
import type { Format } from './wire.ts';
import { isRecord } from './wire.ts';

export interface Conversation {
  /** 1 for a request with no assistant message, 2 after one answer, ... */
  turn: number;
  /** Names of the tools the request offers (`tools[].function.name` / `tools[].name`). */
  tools: string[];
  /** Tool results sent back: OpenAI `role: "tool"` messages, Anthropic `tool_result` blocks. */
  toolResults: number;
}

export function conversationOf(format: Format, body: unknown): Conversation {
  const out: Conversation = { turn: 1, tools: [], toolResults: 0 };
  if (!isRecord(body)) return out;
  const messages = Array.isArray(body['messages']) ? (body['messages'] as unknown[]) : [];
  for (const m of messages) {
    if (!isRecord(m)) continue;
    if (m['role'] === 'assistant') out.turn += 1;
    if (format === 'openai' && m['role'] === 'tool') out.toolResults += 1;
    if (format === 'anthropic' && Array.isArray(m['content'])) {
      for (const block of m['content'] as unknown[]) if (isRecord(block) && block['type'] === 'tool_result') out.toolResults += 1;
    }
  }
  const tools = Array.isArray(body['tools']) ? (body['tools'] as unknown[]) : [];
  for (const t of tools) {
    if (!isRecord(t)) continue;
    const name = format === 'openai' ? (isRecord(t['function']) ? t['function']['name'] : undefined) : t['name'];
    if (typeof name === 'string') out.tools.push(name);
  }
  return out;
}
