/**
 * The settings a deployed component reads, derived from the code rather than listed by hand: the
 * documented setting names (README's configuration tables, docs/*.md) that the source files reachable
 * from the component's entry points (their relative imports, followed) read, by the same textual rule
 * docker-compose.yml is held to (test/deploy/composeCheck.ts `reads`).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { documentedSettings, reads } from '../deploy/composeCheck.js';

export const root = resolve(import.meta.dirname, '..', '..');
const read = (path: string): string => readFileSync(join(root, path), 'utf8');

/** Every documented setting name. */
export function documented(): Set<string> {
  const docs = readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => read(join('docs', f)));
  return documentedSettings(read('README.md'), docs);
}

/** Repository paths of the source files reachable from `entries` through relative imports (`./x.js` is `./x.ts`). */
export function reachable(entries: readonly string[]): string[] {
  const seen = new Set<string>();
  const queue = [...entries];
  while (queue.length > 0) {
    const path = queue.pop()!;
    if (seen.has(path)) continue;
    seen.add(path);
    const text = read(path);
    for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const target = relative(root, resolve(root, dirname(path), m[1]!.replace(/\.js$/, '.ts')));
      queue.push(target);
    }
  }
  return [...seen].sort();
}

/** The entry files of a directory (its top-level `.ts` files), e.g. the Functions app's `src/functions/*.ts`. */
export function entryFiles(dir: string): string[] {
  return readdirSync(join(root, dir))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(dir, f));
}

/**
 * The documented settings the code of `files` reads. The tables' first columns also name values and
 * types (`prefer`, `jsonb`, `__op`): a setting's name starts with a capital letter.
 */
export function settingsRead(files: readonly string[]): Set<string> {
  const source = files.map(read).join('\n');
  return new Set([...documented()].filter((name) => /^[A-Z][A-Za-z0-9_.]*$/.test(name) && reads(source, name)));
}
