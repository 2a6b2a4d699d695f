/**
 * What the lab "model" says. Answers are a pure function of the prompt so that tests, benchmarks and
 * replays can compare outputs byte for byte, and cheap (a few string operations) because the lab must
 * answer 2,000 concurrent requests without becoming the bottleneck.
 */

export interface Prompt {
  system: string;
  user: string;
  /** Every message's text, for the token estimate. */
  allChars: number;
}

/** Roughly 4 characters per token for English text: close enough for budgets and dashboards. */
export function estimateTokens(chars: number): number {
  return Math.max(1, Math.ceil(chars / 4));
}

export function fnv1a(text: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The system prompt marker by which a client asks for files (the codegen contract). */
const CODEGEN_MARKER = 'file=<';

export function answerFor(prompt: Prompt): string {
  return prompt.system.includes(CODEGEN_MARKER) ? codegenAnswer(prompt.user) : proseAnswer(prompt.user);
}

const SENTENCES = [
  'The request was read in full and answered without calling any real model.',
  'Every answer here is derived from the prompt, so the same prompt always gets the same words.',
  'Token counts are estimated at about four characters per token.',
  'Point a client at another mode of the lab to watch it fail in a controlled way.',
  'Streaming splits this text into several small content chunks.',
  'Nothing in this reply left the loopback interface.',
  'A deadline that fires on this endpoint means the client, not the lab, is slow.',
  'The lab keeps no state between requests except the counters of limited modes.',
];

function proseAnswer(user: string): string {
  const words = user.trim().split(/\s+/).filter((w) => w !== '');
  const gist = words.length === 0 ? 'an empty prompt' : `"${words.slice(0, 10).join(' ')}${words.length > 10 ? ' …' : ''}"`;
  const h = fnv1a(user);
  const picks = [h % SENTENCES.length, (h >>> 8) % SENTENCES.length, (h >>> 16) % SENTENCES.length];
  const unique = [...new Set(picks)].map((i) => SENTENCES[i]);
  // The em dash is deliberate: every prose answer carries a multi-byte UTF-8 character, so clients
  // that decode chunk by chunk instead of byte stream by byte stream are caught.
  return `Lab answer — you asked about ${gist}. ${unique.join(' ')}`;
}

const LANGUAGES: Record<string, string> = {
  md: 'markdown', markdown: 'markdown', ts: 'typescript', tsx: 'tsx', js: 'javascript', mjs: 'javascript',
  cjs: 'javascript', jsx: 'jsx', html: 'html', htm: 'html', css: 'css', json: 'json', py: 'python',
  txt: 'text', yaml: 'yaml', yml: 'yaml', sh: 'bash', go: 'go', rs: 'rust', toml: 'toml', sql: 'sql',
  java: 'java', rb: 'ruby', c: 'c', h: 'c', cpp: 'cpp',
};

// A relative path made of word characters, ending in a known extension: README.md, src/app.ts,
// index.html. The look-arounds keep "e.g." or a URL's host out; a trailing full stop is allowed.
const FILE_NAME = new RegExp(
  String.raw`(?<![\w./-])((?:[\w-]+/)*[\w][\w.-]*\.(` + Object.keys(LANGUAGES).join('|') + String.raw`))(?![\w/-])`,
  'gi',
);

export function namedFiles(text: string): string[] {
  const found = new Set<string>();
  for (const match of text.matchAll(FILE_NAME)) {
    if (match[1] !== undefined) found.add(match[1]);
    if (found.size >= 20) break;
  }
  return [...found];
}

function codegenAnswer(user: string): string {
  const files = namedFiles(user);
  if (files.length === 0) files.push('output.md');
  const title = titleOf(user);
  const blocks = files.map((path) => {
    const ext = (path.split('.').pop() ?? '').toLowerCase();
    const language = LANGUAGES[ext] ?? 'text';
    return '```' + `${language} file=${path}\n${fileBody(ext, title, user).trimEnd()}\n` + '```';
  });
  const noun = files.length === 1 ? 'file' : 'files';
  // The em dash keeps a multi-byte UTF-8 character in every answer (see proseAnswer).
  return `Here ${files.length === 1 ? 'is the' : 'are the'} requested ${noun} — ${files.join(', ')}.\n\n${blocks.join('\n\n')}\n`;
}

const FILLER = new Set([
  'a', 'an', 'the', 'and', 'or', 'of', 'for', 'to', 'in', 'on', 'with', 'write', 'create', 'make', 'generate',
  'simple', 'small', 'basic', 'file', 'files', 'please', 'me', 'that', 'which', 'some', 'new', 'build',
  'describe', 'explain', 'document', 'tell', 'give', 'about', 'how', 'what', 'is', 'are', 'short', 'quick',
]);

function titleOf(user: string): string {
  if (/hello[\s,_-]*world/i.test(user)) return 'Hello World';
  const words = user
    .replace(FILE_NAME, ' ')
    .toLowerCase()
    .match(/[\p{L}\p{N}]+/gu)
    ?.filter((w) => !FILLER.has(w))
    .slice(0, 4);
  if (!words || words.length === 0) return 'Lab Output';
  return words.map((w) => w[0]?.toUpperCase() + w.slice(1)).join(' ');
}

function greetingOf(title: string): string {
  return title === 'Hello World' ? 'Hello, World!' : `${title}: ready.`;
}

// File bodies never contain ``` so that the surrounding fence cannot be closed early; markdown uses
// indented code blocks for the same reason.
function fileBody(ext: string, title: string, user: string): string {
  const greeting = greetingOf(title);
  const slug = title.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'lab-output';
  switch (ext) {
    case 'md':
    case 'markdown':
      if (title === 'Hello World') {
        return [
          '# Hello World',
          '',
          'A minimal Hello World project: the classic first program, which prints a greeting.',
          '',
          '## Usage',
          '',
          'Run it from a shell:',
          '',
          '    echo "Hello, World!"',
          '',
          '## Output',
          '',
          '    Hello, World!',
        ].join('\n');
      }
      return [`# ${title}`, '', `This document covers ${title.toLowerCase()}.`, '', '## Request', '', `> ${user.trim().slice(0, 200)}`, '', '## Notes', '', '- Written by the runwarden hang lab.', '- Same request, same document.'].join('\n');
    case 'ts':
    case 'tsx':
      return `// ${title}\nexport function main(): void {\n  console.log(${JSON.stringify(greeting)});\n}\n\nmain();`;
    case 'js':
    case 'mjs':
    case 'cjs':
    case 'jsx':
      return `// ${title}\nfunction main() {\n  console.log(${JSON.stringify(greeting)});\n}\n\nmain();`;
    case 'html':
    case 'htm':
      return `<!doctype html>\n<html lang="en">\n  <head>\n    <meta charset="utf-8">\n    <title>${title}</title>\n  </head>\n  <body>\n    <h1>${title}</h1>\n    <p>${greeting}</p>\n  </body>\n</html>`;
    case 'css':
      return `/* ${title} */\nbody {\n  font-family: system-ui, sans-serif;\n  margin: 2rem;\n}\n\nh1 {\n  color: #222;\n}`;
    case 'json':
      return JSON.stringify({ name: slug, version: '1.0.0', description: title }, null, 2);
    case 'py':
      return `"""${title}."""\n\n\ndef main() -> None:\n    print(${JSON.stringify(greeting)})\n\n\nif __name__ == "__main__":\n    main()`;
    case 'sh':
      return `#!/usr/bin/env bash\n# ${title}\necho ${JSON.stringify(greeting)}`;
    case 'yaml':
    case 'yml':
      return `name: ${slug}\ndescription: ${JSON.stringify(title)}`;
    default:
      return `${title}\n\n${greeting}`;
  }
}

/**
 * Cuts an answer into streaming pieces of about 24 characters, always just after a space, so that a
 * sentence arrives as several chunks and no piece ever splits a surrogate pair.
 */
export function splitAnswer(answer: string, size = 24): string[] {
  const pieces: string[] = [];
  let start = 0;
  while (start < answer.length) {
    let end = start + size;
    if (end >= answer.length) end = answer.length;
    else {
      const space = answer.indexOf(' ', end);
      end = space === -1 ? answer.length : space + 1;
    }
    pieces.push(answer.slice(start, end));
    start = end;
  }
  return pieces.length === 0 ? [''] : pieces;
}

/** Truncates to a token budget (the `max_tokens` a client sent), never inside a surrogate pair. */
export function truncateToTokens(answer: string, maxTokens: number): string {
  let end = Math.min(answer.length, maxTokens * 4);
  const code = answer.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end -= 1;
  return answer.slice(0, end);
}
