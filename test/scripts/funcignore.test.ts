/**
 * What `func azure functionapp publish` would package (scripts/funcignore.ts: `.funcignore` with
 * gitignore semantics), on a copy of this checkout's file tree: every tracked file, the build output
 * `npm run build` makes of them (dist/, with source maps), and what a working checkout also holds
 * (node_modules, .pg-cdc, artifacts, coverage, infra/node_modules). Files are empty: only names matter.
 */
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { packageFiles } from '../../scripts/funcignore.js';

const root = join(import.meta.dirname, '..', '..');
let tree: string;
let files: string[];

beforeAll(() => {
  tree = mkdtempSync(join(tmpdir(), 'funcignore-'));
  const tracked = execFileSync('git', ['ls-files'], { cwd: root, encoding: 'utf8' })
    .split('\n')
    .filter((f) => f !== '');
  const built = tracked
    .filter((f) => /^(src|scripts|bench)\/.*\.ts$/.test(f) && !f.endsWith('.d.ts'))
    .flatMap((f) => [`dist/${f.replace(/\.ts$/, '.js')}`, `dist/${f.replace(/\.ts$/, '.js.map')}`]);
  const local = [
    'node_modules/pg/package.json',
    'node_modules/pg/lib/index.js',
    'node_modules/@azure/functions/package.json',
    'node_modules/@types/node/index.d.ts',
    'node_modules/typescript/package.json',
    'node_modules/.bin/tsc',
    'infra/node_modules/@pulumi/pulumi/package.json',
    'infra/dist/infra/index.js',
    '.pg-cdc/start.json',
    'artifacts/functions-package/host.json',
    'coverage/lcov.info',
    'local.settings.json',
    '.services.env',
  ];
  for (const f of [...tracked, ...built, ...local]) {
    mkdirSync(dirname(join(tree, f)), { recursive: true });
    writeFileSync(join(tree, f), '');
  }
  copyFileSync(join(root, '.funcignore'), join(tree, '.funcignore'));
  files = packageFiles(tree);
});
afterAll(() => rmSync(tree, { recursive: true, force: true }));

test('the published package is host.json, package.json, the lock, the compiled functions and shared code, and node_modules', () => {
  expect(files).toEqual(
    expect.arrayContaining([
      'host.json',
      'package.json',
      'package-lock.json',
      'node_modules/',
      'dist/src/functions/sinks.js',
      'dist/src/functions/status.js',
      'dist/src/shared/sinks/registry.js',
    ]),
  );
  // Every entry file of package.json `main` (dist/src/functions/*.js) is in.
  const entries = files.filter((f) => /^dist\/src\/functions\/[^/]+\.js$/.test(f));
  expect(entries.length).toBeGreaterThan(0);
  // Nothing else at all: the list is exactly these kinds of file.
  expect(files.filter((f) => !/^(host\.json|package\.json|package-lock\.json|node_modules\/|dist\/src\/(functions|shared)\/.+\.js)$/.test(f))).toEqual([]);
});

test('no sources, tests, infrastructure, benchmarks, local state, other hosts or source maps', () => {
  for (const prefix of [
    'src/',
    'test/',
    'infra/',
    'bench/',
    'scripts/',
    'docs/',
    'deploy/',
    'queries/',
    '.pg-cdc/',
    'artifacts/',
    'coverage/',
    '.ci/',
    'dist/src/reader/',
    'dist/src/worker/',
    'dist/src/start/',
    'dist/scripts/',
    'dist/bench/',
  ]) {
    expect(files.filter((f) => f.startsWith(prefix))).toEqual([]);
  }
  expect(
    files.filter((f) => /\.(ts|map)$/.test(f) || /^(local\.settings|\.services|\.git|Dockerfile|docker-compose|README|tsconfig|jest|eslint)/.test(f)),
  ).toEqual([]);
});
