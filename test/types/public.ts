/**
 * Type-level checks, run by `npm run typecheck` (a failing one is a compile error): the public types
 * written out for the package (they must not reach into Node's types) agree with the internal types
 * they describe.
 */
import type { HangReport as BuiltHangReport } from '../../src/forensics/report.ts';
import type { echoTool, httpTool, sleepTool } from '../../src/tools/builtin.ts';
import type { createLlmTool } from '../../src/tools/llm.ts';
import type { ToolOutput, ToolPlanInput } from '../../src/tools/types.ts';
import type { builtins, HangReport, StepDetail } from '../../src/index.ts';
import type { EngineApi } from '../../src/engine/api.ts';

type Assert<T extends true> = T;
type Fits<A, B> = [A] extends [B] ? true : false;
type B = typeof builtins;

export type Checks = [
  // What the forensics builder writes is what the public HangReport promises.
  Assert<Fits<BuiltHangReport, HangReport>>,
  // What the API returns for a step fits the client's StepDetail once hang reports are typed.
  Assert<Fits<Omit<Awaited<ReturnType<EngineApi['getStep']>>, 'hangReports' | 'attemptsDetail'>, Omit<StepDetail, 'hangReports' | 'attemptsDetail'>>>,
  // The built-in references carry the definitions' types: what a plan may give them is what the
  // tool accepts, and what the tool returns is what a reference promises.
  Assert<Fits<ToolPlanInput<B['echo']>, ToolPlanInput<typeof echoTool>>>,
  Assert<Fits<ToolOutput<typeof echoTool>, ToolOutput<B['echo']>>>,
  Assert<Fits<ToolPlanInput<B['sleep']>, ToolPlanInput<typeof sleepTool>>>,
  Assert<Fits<ToolOutput<typeof sleepTool>, ToolOutput<B['sleep']>>>,
  Assert<Fits<ToolPlanInput<B['http']>, ToolPlanInput<typeof httpTool>>>,
  Assert<Fits<ToolOutput<typeof httpTool>, ToolOutput<B['http']>>>,
  Assert<Fits<ToolPlanInput<B['llm']>, ToolPlanInput<ReturnType<typeof createLlmTool>>>>,
  Assert<Fits<ToolOutput<ReturnType<typeof createLlmTool>>, ToolOutput<B['llm']>>>,
];
