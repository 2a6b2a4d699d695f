/**
 * The TypeScript of docs/typescript.md, docs/embedding.md and the README's "Use it from TypeScript"
 * compiles against the package as it is (strict, with the repository's settings): a block whose
 * first line is `// name.ts` is that file, so blocks that import each other compile together. The
 * docs test (test/docs) runs the shell examples; this keeps the code ones from going stale.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { blocks } from '../docs/extract.ts';

const ROOT = join(import.meta.dirname, '..', '..');

function sources(file: string, section?: string): Array<{ name: string; code: string }> {
  let markdown = readFileSync(join(ROOT, file), 'utf8');
  if (section) {
    const start = markdown.indexOf(`\n## ${section}\n`);
    assert.ok(start >= 0, `${file} has no section "${section}"`);
    const end = markdown.indexOf('\n## ', start + 1);
    markdown = markdown.slice(start, end < 0 ? undefined : end);
  }
  return blocks(file, markdown)
    .filter((b) => b.info === 'ts')
    .map((b, i) => ({ name: /^\/\/ ([\w.-]+\.ts)\b/.exec(b.text)?.[1] ?? `block${i}.ts`, code: b.text }));
}

const parsed = ts.parseJsonConfigFileContent(ts.readConfigFile(join(ROOT, 'tsconfig.json'), (p) => ts.sys.readFile(p)).config as object, ts.sys, ROOT);

const DOCS = [['docs/typescript.md'], ['docs/embedding.md'], ['README.md', 'Use it from TypeScript']] as const;

// One program for all of them: type-checking the sources they import is most of the cost (~20 s).
test(`the TypeScript of ${DOCS.map(([f, s]) => (s ? `${f} ("${s}")` : f)).join(', ')} compiles`, () => {
  // Inside the repository, so that `runwarden` resolves to src/ as it does for the examples.
  const dir = mkdtempSync(join(ROOT, '.doc-code-'));
  try {
    const files: string[] = [];
    for (const [i, [file, section]] of DOCS.entries()) {
      const code = sources(file, section);
      assert.ok(code.length >= 1, `no ts block in ${file}`);
      mkdirSync(join(dir, String(i)));
      for (const c of code) {
        writeFileSync(join(dir, String(i), c.name), c.code);
        files.push(join(dir, String(i), c.name));
      }
    }
    const program = ts.createProgram(files, { ...parsed.options, noEmit: true });
    const errors = ts.getPreEmitDiagnostics(program).map((d) => {
      const rel = d.file?.fileName.replace(`${dir}/`, '') ?? '?';
      const doc = DOCS[Number(rel.split('/')[0])]?.[0] ?? rel;
      const where = d.file && d.start !== undefined ? `${doc}: ${rel.split('/').slice(1).join('/')}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}` : '?';
      return `${where} TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
    });
    assert.deepEqual(errors, []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
