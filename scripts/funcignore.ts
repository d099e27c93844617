/**
 * The files `func azure functionapp publish` packages: every file of the project folder that
 * `.funcignore` (gitignore syntax) does not exclude. `npm run deploy` stages exactly these (less
 * node_modules, which it installs without the dev dependencies), and test/scripts/funcignore.test.ts
 * checks the list.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

interface IgnoreRules {
  add(patterns: string): IgnoreRules;
  ignores(path: string): boolean;
}
// `ignore` (gitignore semantics, what ESLint uses) is CommonJS: its module.exports is the factory,
// which its types (an ESM default export) do not say under NodeNext.
const ignore = createRequire(import.meta.url)('ignore') as () => IgnoreRules;

/** Paths (relative, `/`-separated) of the files `.funcignore` lets through; `node_modules` is listed as one entry, not walked. */
export function packageFiles(root: string): string[] {
  const rules = ignore().add(readFileSync(join(root, '.funcignore'), 'utf8'));
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
      const path = dir === '' ? entry.name : `${dir}/${entry.name}`;
      if (entry.isDirectory()) {
        // gitignore: an excluded directory's files cannot be re-included.
        if (rules.ignores(`${path}/`)) continue;
        if (path === 'node_modules') files.push('node_modules/');
        else walk(path);
      } else if (!rules.ignores(path)) files.push(path);
    }
  };
  walk('');
  return files.sort();
}
