/** From a parsed request body to the healthy Reply that every mode replays in part. */
import { messagesReply, parseMessages } from './anthropic.ts';
import { answerFor, estimateTokens, splitAnswer, truncateToTokens } from './content.ts';
import { chatReply, embeddingsReply, modelsReply, parseChat, parseEmbeddings } from './openai.ts';
import type { Endpoint } from './params.ts';
import type { ChatRequest, Finish, Reply, Usage } from './wire.ts';

/** Returns the reply, or a string: the message of a 400 in the provider's error shape. */
export function buildReply(endpoint: Endpoint, body: unknown, id: string): Reply | string {
  switch (endpoint) {
    case 'chat': {
      const req = parseChat(body);
      if (typeof req === 'string') return req;
      const { pieces, finish, usage } = answerParts(req);
      return { ...chatReply(req, `chatcmpl-${id}`, pieces, finish, usage), tokens: usage.input + usage.output };
    }
    case 'messages': {
      const req = parseMessages(body);
      if (typeof req === 'string') return req;
      const { pieces, finish, usage } = answerParts(req);
      return { ...messagesReply(req, `msg_${id}`, pieces, finish, usage), tokens: usage.input + usage.output };
    }
    case 'embeddings': {
      const req = parseEmbeddings(body);
      return typeof req === 'string' ? req : embeddingsReply(req);
    }
    case 'models':
      return modelsReply();
  }
}

function answerParts(req: ChatRequest): { pieces: string[]; finish: Finish; usage: Usage } {
  let answer = answerFor(req.prompt);
  let finish: Finish = 'stop';
  if (req.maxTokens !== undefined && estimateTokens(answer.length) > req.maxTokens) {
    answer = truncateToTokens(answer, req.maxTokens);
    finish = 'length';
  }
  return {
    pieces: splitAnswer(answer),
    finish,
    usage: { input: estimateTokens(req.prompt.allChars), output: estimateTokens(answer.length) },
  };
}
