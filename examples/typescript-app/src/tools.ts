// Two tools typed by their JSON Schemas. The default export is what `runwarden start --tools`
// loads; the named exports are what the plan and the embedded runtime use.
import { defineTool, jsonSchema } from 'runwarden';

export const shout = defineTool({
  name: 'shout',
  description: 'Upper-cases a text.',
  input: jsonSchema({ type: 'object', properties: { text: { type: 'string', minLength: 1 } }, required: ['text'], additionalProperties: false }),
  run(ctx, input) {
    ctx.log(`shouting ${input.text.length} characters`);
    return { text: input.text.toUpperCase(), length: input.text.length };
  },
});

export const countWords = defineTool({
  name: 'count_words',
  description: 'Counts the words of a text.',
  input: jsonSchema({ type: 'object', properties: { text: { type: 'string' } }, required: ['text'] }),
  run: (_ctx, input) => ({ words: input.text.split(/\s+/).filter((w) => w !== '').length }),
});

export default [shout, countWords];
