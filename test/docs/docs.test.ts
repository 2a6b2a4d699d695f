/**
 * The docs cannot drift: every command example of README.md and docs/*.md runs (each file in a
 * network namespace of its own, so the documented ports are free), transcripts match what the
 * command prints, and a command that cannot run offline is skipped only for a reason listed in
 * extract.ts. Also: the README's plan is the example file it submits, and every page the README
 * or a docs page links to exists.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { blocks, matches, normalize } from './extract.ts';
import type { Result } from './session.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const FILES = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** `unshare -rn` gives a private loopback; without it the examples would fight other tests for 7400. */
function namespaceWorks(): boolean {
  return spawnSync('unshare', ['-rn', 'true']).status === 0;
}

async function session(file: string): Promise<Result[]> {
  const child = spawn('unshare', ['-rn', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', process.execPath, join(ROOT, 'test/docs/session.ts'), join(ROOT, file)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 110_000);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  clearTimeout(timer);
  assert.equal(code, 0, `the docs session for ${file} crashed:\n${err}`);
  return out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Result);
}

test('docs examples run', { skip: !namespaceWorks() && process.env.CI !== 'true' ? 'unshare -rn is not available here' : false }, async (t) => {
  assert.ok(namespaceWorks(), 'unshare -rn must work under CI');
  // Two sessions at a time: each starts a deployment with worker processes.
  const results = new Map<string, Result[]>();
  const queue = [...FILES];
  await Promise.all(
    [0, 1].map(async () => {
      for (let file = queue.shift(); file !== undefined; file = queue.shift()) results.set(file, await session(file));
    }),
  );
  let ran = 0;
  for (const file of FILES) {
    for (const r of results.get(file) ?? []) {
      if (r.status === 'ok') ran++;
      await t.test(`${r.file}:${r.line} ${r.command}`, { skip: r.status === 'skipped' ? r.detail : false }, () => {
        assert.equal(r.status, 'ok', r.detail);
      });
    }
  }
  // The harness itself cannot quietly stop running examples.
  t.diagnostic(`${ran} examples ran`);
  assert.ok(ran >= 40, `only ${ran} examples ran`);
});

describe('docs are self-contained', () => {
  test('every relative link of README.md and docs/*.md points at a file in the repository', () => {
    const broken: string[] = [];
    for (const file of FILES) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = (m[1] ?? '').split('#')[0] ?? '';
        if (target === '' || /^[a-z]+:/.test(target)) continue;
        if (!existsSync(join(ROOT, dirname(file), target))) broken.push(`${file}: ${m[1]}`);
      }
    }
    assert.deepEqual(broken, []);
  });

  test("the README's plan is examples/hello.json, the file its command submits", () => {
    const plan = blocks(join(ROOT, 'README.md')).find((b) => b.info === 'json');
    assert.ok(plan, 'the README shows a plan');
    assert.deepEqual(JSON.parse(plan.text), JSON.parse(readFileSync(join(ROOT, 'examples/hello.json'), 'utf8')));
  });
});

describe('the docs test harness', () => {
  test('normalize and matches: what may differ is ignored, what may not is caught', () => {
    const cwd = '/tmp/rw-docs-abc';
    const a = normalize('12:00:01.234 step.finished greet succeeded 45ms\nrun 01a2338a-7a07-77b9-904d-5b7e49932618 succeeded\ndata: /tmp/rw-docs-abc/.runwarden (SQLite)', cwd);
    const b = normalize('09:59:00.001 step.finished greet succeeded 3ms\nrun 019ab0c2-0000-7000-8000-000000000000 succeeded\ndata: /home/me/project/.runwarden (SQLite)', cwd);
    assert.equal(a, b);
    assert.ok(matches(['first', '...', 'last ... line'], ['first', 'x', 'y', 'last odd line']));
    assert.ok(!matches(['step.finished greet succeeded <dur>'], ['step.finished greet failed <dur>']));
    assert.ok(!matches(['a', 'b'], ['a']));
  });
});
