import eslint from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'test/services/target/**', 'bench/results/**'] },
  eslint.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  prettier,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'error',
    },
  },
  // Module boundaries (README "Module map"): plumbing at the bottom, the event model on it, the sinks
  // on both, hosts at the edge; the reader sees only the plumbing and the event model; the sink hosts
  // (Functions, worker) see src/shared and never each other.
  {
    files: ['src/shared/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: '@azure/functions', message: 'src/shared is host-independent: Functions adapters live in src/functions/host.' }],
          patterns: [{ regex: '(^|/)(functions|reader|worker|start)/', message: 'src/shared never imports a host or the reader.' }],
        },
      ],
    },
  },
  {
    files: ['src/shared/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ regex: '^\\.\\./', message: 'The plumbing core imports nothing of ours outside src/shared/core.' }] }],
    },
  },
  {
    files: ['src/shared/events/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^\\.\\./(?!core/)', message: 'The event model imports only the plumbing core (src/shared/core).' }] },
      ],
    },
  },
  {
    files: ['src/reader/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: '@azure/functions', message: 'The reader is not a Functions host.' }],
          patterns: [
            {
              regex: '(^|/)shared/(?!(core|events)/)|(^|/)(functions|worker)/',
              message: 'The reader imports only the plumbing core (src/shared/core) and the event model (src/shared/events).',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/worker/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: '@azure/functions', message: 'The worker is not a Functions host.' }],
          patterns: [{ regex: '(^|/)(functions|reader)/', message: 'The worker imports src/shared only, never another host (src/functions, src/reader).' }],
        },
      ],
    },
  },
  {
    files: ['src/functions/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '(^|/)(reader|worker)/', message: 'The Functions host imports src/shared only, never another host (src/reader, src/worker).' }] },
      ],
    },
  },
  {
    // `npm start` runs the reader and the worker as processes, never as imports.
    files: ['src/start/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: '@azure/functions', message: 'npm start is not a Functions host.' }],
          patterns: [
            {
              regex: '(^|/)(functions|reader|worker)/',
              message: 'npm start imports src/shared (and the service orchestrator) only: it runs the reader and the worker as child processes.',
            },
          ],
        },
      ],
    },
  },
  {
    // Plain Node scripts (service orchestration, configs) are checked without type information.
    files: ['**/*.mjs', '**/*.cjs', '**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      parserOptions: { projectService: false, project: false, program: null },
      globals: globals.node,
    },
    rules: { ...tseslint.configs.disableTypeChecked.rules, 'no-console': 'off' },
  },
);
