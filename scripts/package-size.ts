/**
 * What `npm install runwarden` costs: packs the package (which builds it), installs the tarball
 * into an empty directory the way a user would (production dependencies only), and prints the
 * tarball and unpacked sizes, the installed size, the number of packages installed and the
 * largest of them.
 *
 *   npm run size            # or: node scripts/package-size.ts [--json]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');

export interface Packed {
  tarball: string;
  /** Bytes of the .tgz. */
  size: number;
  unpackedSize: number;
  files: number;
}

/** The environment for npm: the pinned Node first on PATH (npm's scripts run `node`). */
export function npmEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  env.PATH = `${dirname(process.execPath)}:${env.PATH ?? ''}`;
  return env;
}

/** `npm pack` into `dest` (prepack builds dist/ first). */
export function pack(dest: string): Packed {
  const r = spawnSync('npm', ['pack', '--json', '--pack-destination', dest], { cwd: ROOT, env: npmEnv(), encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`npm pack failed (${r.status ?? r.signal}):\n${r.stderr}`);
  // The build prints to stdout before npm's JSON; the JSON is the last top-level array.
  const json = JSON.parse(r.stdout.slice(r.stdout.lastIndexOf('\n[') + 1)) as Array<{ filename: string; size: number; unpackedSize: number; entryCount: number }>;
  const info = json[0];
  if (!info) throw new Error(`npm pack printed no package:\n${r.stdout}`);
  return { tarball: join(dest, info.filename), size: info.size, unpackedSize: info.unpackedSize, files: info.entryCount };
}

export interface Installed {
  /** Bytes of every file under node_modules. */
  bytes: number;
  /** Packages installed, runwarden included. */
  packages: number;
  /** name -> bytes, largest first. */
  largest: Array<{ name: string; bytes: number }>;
}

function bytesUnder(path: string): number {
  let total = 0;
  for (const e of readdirSync(path, { recursive: true, withFileTypes: true })) if (e.isFile()) total += statSync(join(e.parentPath, e.name)).size;
  return total;
}

/** Every package directory under node_modules (scoped and nested ones too). */
function packageDirs(nodeModules: string): Array<{ name: string; dir: string }> {
  const out: Array<{ name: string; dir: string }> = [];
  let entries: string[];
  try {
    entries = readdirSync(nodeModules);
  } catch {
    return out;
  }
  for (const entry of entries) {
    if (entry.startsWith('.')) continue;
    const dirs = entry.startsWith('@') ? readdirSync(join(nodeModules, entry)).map((s) => `${entry}/${s}`) : [entry];
    for (const name of dirs) {
      const dir = join(nodeModules, name);
      try {
        JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      } catch {
        continue;
      }
      out.push({ name, dir });
      out.push(...packageDirs(join(dir, 'node_modules')));
    }
  }
  return out;
}

/** Installs `tarball` (production dependencies only) into a new directory and measures it. */
export function installAndMeasure(tarball: string): Installed {
  const dir = mkdtempSync(join(tmpdir(), 'rw-size-'));
  try {
    const r = spawnSync('npm', ['install', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: dir, env: npmEnv(), encoding: 'utf8', timeout: 300_000 });
    if (r.status !== 0) throw new Error(`npm install failed (${r.status ?? r.signal}):\n${r.stderr}`);
    const nm = join(dir, 'node_modules');
    const pkgs = packageDirs(nm);
    // A nested package's bytes are counted in its own row, not again in its parent's.
    const sizes = pkgs.map((p) => ({ name: p.name, bytes: bytesUnder(p.dir) - pkgs.filter((q) => q.dir.startsWith(`${p.dir}/node_modules/`)).reduce((s, q) => s + bytesUnder(q.dir), 0) }));
    return { bytes: bytesUnder(nm), packages: pkgs.length, largest: sizes.sort((a, b) => b.bytes - a.bytes) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The optional peer dependencies: what `npm install runwarden` leaves out. */
export function optionalPeers(): string[] {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { peerDependenciesMeta?: Record<string, { optional?: boolean }> };
  return Object.entries(pkg.peerDependenciesMeta ?? {}).flatMap(([name, m]) => (m.optional ? [name] : []));
}

const mb = (n: number): string => `${(n / 1_048_576).toFixed(1)} MB`;

if (import.meta.main) {
  const dest = mkdtempSync(join(tmpdir(), 'rw-pack-'));
  try {
    const packed = pack(dest);
    const installed = installAndMeasure(packed.tarball);
    if (process.argv.includes('--json')) {
      process.stdout.write(`${JSON.stringify({ packed: { ...packed, tarball: undefined }, installed }, null, 2)}\n`);
    } else {
      const lines = [
        `tarball          ${mb(packed.size)} (${packed.files} files, ${mb(packed.unpackedSize)} unpacked)`,
        `installed        ${mb(installed.bytes)} in node_modules, ${installed.packages} packages (runwarden and ${installed.packages - 1} dependencies)`,
        `not installed    ${optionalPeers().join(', ')} (optional peer dependencies: install them for PostgreSQL, or to export traces)`,
        'largest packages:',
        ...installed.largest.slice(0, 12).map((p) => `  ${p.name.padEnd(40)} ${mb(p.bytes).padStart(9)}`),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    }
  } finally {
    rmSync(dest, { recursive: true, force: true });
  }
}
