// Jest runs in native ESM mode (azure-kusto-ingest 7 is ESM-only), so `npm test` passes
// --experimental-vm-modules. TypeScript is stripped by @swc/jest (no type-check per test file:
// `npm run typecheck` does that once for the whole tree).
/** @type {import('jest').Config} */
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2023' }, module: { type: 'es6' } }],
  },
  // Sources import siblings as `./x.js` (NodeNext); map them back to the .ts files under test.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  // Starts the real services (PostgreSQL, Kafka, Elasticsearch, Azurite) unless they already run.
  globalSetup: '<rootDir>/test/services/jestGlobalSetup.mjs',
  globalTeardown: '<rootDir>/test/services/jestGlobalTeardown.mjs',
  testTimeout: 120_000,
  maxWorkers: 2,
};
