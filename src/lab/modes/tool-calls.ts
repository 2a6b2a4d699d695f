/**
 * tool_calls: the model of an agent loop. For the first `turns` turns of a conversation it answers
 * with tool calls (OpenAI `tool_calls`, Anthropic `tool_use`), then with a final healthy answer.
 * The turn is read from the request (conversation.ts), never counted by the lab, so the answer to a
 * turn is the same however often it is asked: ids and arguments are deterministic too.
 */
import { messagesToolUseReply, parseMessages } from '../anthropic.ts';
import { estimateTokens } from '../content.ts';
import { conversationOf } from '../conversation.ts';
import { chatToolCallsReply, parseChat } from '../openai.ts';
import { ParamError } from '../params.ts';
import type { Reply, ToolCallSpec } from '../wire.ts';
import { isRecord } from '../wire.ts';
import { sendHealthy } from './healthy.ts';
import type { Mode } from './types.ts';

const MAX_MS = 2 ** 31 - 1;

export const toolCalls: Mode = (ex, lab) => {
  const turns = ex.params.int('turns', 1, 0, 1000);
  const perTurn = ex.params.int('calls', 1, 1, 64);
  const chunkMs = ex.params.int('chunk_ms', 0, 0, 60_000);
  const slowTurn = ex.params.optionalInt('slow_turn', 1, 1000);
  const slowMs = ex.params.int('slow_ms', 60_000, 0, MAX_MS);
  const tool = ex.params.str('tool', '');
  const args = argsParam(ex.params.has('args') ? ex.params.str('args', '') : undefined);
  const key = ex.params.str('key', new URL(ex.req.url ?? '/', 'http://lab.invalid').pathname);

  let reply: Reply = ex.reply;
  let turn = 0;
  if (ex.endpoint === 'chat' || ex.endpoint === 'messages') {
    const conversation = conversationOf(ex.format, ex.body);
    turn = conversation.turn;
    if (turn <= turns) {
      const name = tool !== '' ? tool : conversation.tools[0];
      if (name === undefined) throw new ParamError('tool_calls: the request offers no tools; send `tools` or set the `tool` parameter');
      const prefix = ex.format === 'openai' ? 'call' : 'toolu';
      const calls: ToolCallSpec[] = Array.from({ length: perTurn }, (_, i) => ({
        id: `${prefix}_lab_t${turn}_${i + 1}`,
        name,
        args: JSON.stringify(args ?? { turn, call: i + 1 }),
      }));
      // parse* cannot fail here: buildReply accepted the same body before the mode ran.
      const req = ex.format === 'openai' ? parseChat(ex.body) : parseMessages(ex.body);
      if (typeof req === 'string') throw new ParamError(req);
      const usage = { input: estimateTokens(req.prompt.allChars), output: estimateTokens(calls.reduce((n, c) => n + c.name.length + c.args.length, 0)) };
      reply = ex.format === 'openai' ? chatToolCallsReply(req, `chatcmpl-${ex.requestId}`, calls, usage) : messagesToolUseReply(req, `msg_${ex.requestId}`, calls, usage);
    }
  }
  return async () => {
    // Only the first request of that turn (per key) is slow: the one a test kills its client during.
    if (turn > 0 && turn === slowTurn && lab.withinFirst(`tool_calls.slow\u0000${key}\u0000${turn}`, 1)) {
      if (!(await ex.sleep(slowMs))) return;
    }
    await sendHealthy(ex, chunkMs, {}, reply);
  };
};

function argsParam(raw: string | undefined): Record<string, unknown> | undefined {
  if (raw === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new ParamError(`args must be a JSON object (${(err as Error).message})`);
  }
  if (!isRecord(value)) throw new ParamError('args must be a JSON object');
  return value;
}
