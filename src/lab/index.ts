/**
 * The hang lab: a loopback HTTP server speaking the OpenAI and Anthropic wire formats that misbehaves
 * on demand. See docs/lab.md.
 */
export type { Lab, LabOptions, ModeInfo } from './types.ts';
export { startLab } from './server.ts';
export { MODE_NAMES } from './catalog.ts';
export type { ModeName } from './catalog.ts';
