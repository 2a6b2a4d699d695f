/**
 * `codegen`: a prompt to files. The model is asked for one fenced block per file whose info string
 * names the file (`<language> file=<relative/path>`); each file becomes an artifact.
 */
import { z } from 'zod';
import { RunwardenError } from '../domain/errors.ts';
import type { ProviderRegistry } from '../llm/registry.ts';
import { callOptionsFor } from '../llm/call-options.ts';
import { defineTool, type ToolDefinition } from './types.ts';
import { withoutStacks } from '../forensics/ops.ts';

export const codegenInput = z.strictObject({
  prompt: z.string().min(1),
  /** Context for the model, e.g. the system or project the files belong to. */
  topic: z.string().min(1).optional(),
  /** Preferred programming language when the prompt leaves it open. */
  language: z.string().min(1).optional(),
  model: z.string().min(1).optional(),
  provider: z.string().min(1).optional(),
});

export type CodegenInput = z.infer<typeof codegenInput>;

export interface CodegenOutput {
  files: Array<{ name: string; artifactId: string; mime: string; size: number }>;
  text: string;
}

/** Must contain `file=<`: the lab (and any model) answers in the format it describes. */
export const CODEGEN_SYSTEM_PROMPT = [
  'You write code and documents as files.',
  'Answer with one fenced code block per file. Open each block with three backticks, the language and the',
  "file's relative path, exactly in this form: ```<language> file=<relative/path>",
  'For example:',
  '```markdown file=README.md',
  '# Title',
  '```',
  'Paths are relative, use forward slashes and never contain "..". Put only the file content inside a block;',
  'keep any explanation short and outside the blocks.',
].join('\n');

const MIME_BY_EXT: Record<string, string> = {
  md: 'text/markdown',
  markdown: 'text/markdown',
  ts: 'text/typescript',
  tsx: 'text/typescript',
  mts: 'text/typescript',
  js: 'text/javascript',
  mjs: 'text/javascript',
  cjs: 'text/javascript',
  json: 'application/json',
  html: 'text/html',
  htm: 'text/html',
  css: 'text/css',
  py: 'text/x-python',
  txt: 'text/plain',
};

export function mimeFor(name: string): string {
  const dot = name.lastIndexOf('.');
  const ext = dot === -1 ? '' : name.slice(dot + 1).toLowerCase();
  return MIME_BY_EXT[ext] ?? 'text/plain';
}

export interface ParsedFile {
  name: string;
  language: string | null;
  content: string;
}

export interface ParseResult {
  files: ParsedFile[];
  /** Blocks that named a file but were skipped (unsafe path, never closed). */
  skipped: Array<{ name: string; reason: string }>;
}

const FENCE_OPEN = /^ {0,3}(`{3,}|~{3,})\s*(.*)$/;
const NAME_LINE = /^\s*(?:[#>*_\-\s]*)(?:file(?:name)?|path)\s*:\s*\**\s*[`'"]?([^\s`'"*]+)[`'"]?\**\s*$/i;
const NAME_ATTR = /(?:^|\s)(?:file|filename|path)\s*[=:]\s*(?:"([^"]+)"|'([^']+)'|`([^`]+)`|(\S+))/i;

/**
 * Find the named files in a model's answer. Accepted ways to name a file: `file=`, `filename=` or
 * `path=` in the info string (optionally quoted), `lang:path`, or a `File: path` line (bold, heading
 * or quoted variants too) right before the fence, blank lines allowed in between. The last block for
 * a path wins.
 */
export function parseFiles(text: string): ParseResult {
  const lines = text.split(/\r?\n/);
  const byName = new Map<string, ParsedFile>();
  const skipped: ParseResult['skipped'] = [];
  let pendingName: string | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const open = FENCE_OPEN.exec(line);
    if (!open) {
      const named = NAME_LINE.exec(line);
      if (named) pendingName = named[1]!;
      else if (line.trim() !== '') pendingName = null;
      continue;
    }
    const fence = open[1]!;
    const info = open[2]!.trim();
    if (fence[0] === '`' && info.includes('`')) continue; // not a fence per CommonMark
    const { language, name: infoName } = parseInfo(info);
    const name = infoName ?? pendingName;
    pendingName = null;
    // Find the closing fence: same character, at least as long, nothing after it.
    const body: string[] = [];
    let closed = false;
    let j = i + 1;
    for (; j < lines.length; j++) {
      const l = lines[j]!;
      const m = /^ {0,3}(`{3,}|~{3,})\s*$/.exec(l);
      if (m && m[1]![0] === fence[0] && m[1]!.length >= fence.length) {
        closed = true;
        break;
      }
      body.push(l);
    }
    i = j;
    if (name === null) continue;
    const safe = safePath(name);
    if (safe === null) {
      skipped.push({ name, reason: 'unsafe path (absolute or containing "..")' });
      continue;
    }
    if (!closed) {
      skipped.push({ name: safe, reason: 'the block was never closed (answer cut short?)' });
      continue;
    }
    byName.delete(safe);
    byName.set(safe, { name: safe, language, content: body.length > 0 ? `${body.join('\n')}\n` : '' });
  }
  return { files: [...byName.values()], skipped };
}

function parseInfo(info: string): { language: string | null; name: string | null } {
  if (info === '') return { language: null, name: null };
  const attr = NAME_ATTR.exec(info);
  const first = info.split(/\s+/)[0]!;
  if (attr) {
    const name = attr[1] ?? attr[2] ?? attr[3] ?? attr[4] ?? null;
    const language = /^(?:file|filename|path)\s*[=:]/i.test(first) ? null : first;
    return { language, name };
  }
  // ```ts:src/app.ts
  const colon = /^([\w+#.-]+):(\S+\.\w+)$/.exec(first);
  if (colon) return { language: colon[1]!, name: colon[2]! };
  return { language: first, name: null };
}

function safePath(raw: string): string | null {
  let p = raw.trim().replace(/\\/g, '/');
  while (p.startsWith('./')) p = p.slice(2);
  if (p === '' || p.startsWith('/') || /^[A-Za-z]:/.test(p)) return null;
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.length === 0 || parts.some((s) => s === '..')) return null;
  return parts.join('/');
}

export function createCodegenTool(deps: { providers: ProviderRegistry }): ToolDefinition<CodegenInput, CodegenOutput> {
  return defineTool({
    name: 'codegen',
    description: 'Generates files from a prompt; each file is stored as an artifact.',
    input: codegenInput,
    run: async (ctx, input) => {
      const provider = deps.providers.get(input.provider);
      const user = [
        input.topic ? `Topic: ${input.topic}` : null,
        input.language ? `Preferred language: ${input.language}` : null,
        input.prompt,
      ]
        .filter((s): s is string => s !== null)
        .join('\n\n');
      const res = await withoutStacks(() => ctx.track(
        `codegen ${provider.name}`,
        provider.chat(
          {
            messages: [
              { role: 'system', content: CODEGEN_SYSTEM_PROMPT },
              { role: 'user', content: user },
            ],
            model: input.model,
          },
          callOptionsFor(ctx),
        ),
      ));
      const parsed = parseFiles(res.text);
      for (const s of parsed.skipped) ctx.log.warn(`codegen skipped ${s.name}: ${s.reason}`);
      if (parsed.files.length === 0) {
        throw new RunwardenError('CODEGEN_NO_FILES', `the answer (${res.text.length} chars, finish reason ${res.finishReason ?? 'none'}) contained no named file blocks`, { data: { skipped: parsed.skipped, finishReason: res.finishReason, excerpt: res.text.slice(0, 300) },
        });
      }
      ctx.checkpoint(`codegen storing ${parsed.files.length} files`);
      const files = parsed.files.map((f) => {
        const mime = mimeFor(f.name);
        const ref = ctx.artifacts.put({ name: f.name, content: f.content, mime });
        return { name: f.name, artifactId: ref.id, mime: ref.mime, size: ref.size };
      });
      return { files, text: res.text };
    },
  });
}
