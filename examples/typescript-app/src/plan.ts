// The plan, written in TypeScript: each reference to an earlier step's output is checked by the
// compiler (name, field and type), and build() returns the JSON plan that POST /runs takes.
import { builtins, definePlan } from 'runwarden';
import { countWords, shout } from './tools.ts';

export function greetingPlan(text: string) {
  return definePlan({ goal: 'shout a greeting, count its words, pause, report' })
    .step('shout', shout, { text })
    .step('count', countWords, (steps) => ({ text: steps.shout.outputs.text }))
    .step('pause', builtins.sleep, { ms: 200 }, { dependsOn: ['count'], timeoutMs: 5000 })
    .step('report', builtins.echo, (steps) => ({
      line: `${steps.shout.outputs.text} has ${steps.count.outputs.words} words`,
      words: steps.count.outputs.words,
    }), { dependsOn: ['pause'] })
    .build();
}
