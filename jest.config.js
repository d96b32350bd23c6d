/**
 * Jest runs TypeScript through @swc/jest (about 4x faster than ts-jest); type-checking is
 * a separate `tsc --noEmit` step in `npm test`. ESM-only dependencies (jose,
 * oauth2-mock-server and its is-plain-obj) are transformed to CommonJS because jest 30
 * cannot load ESM from CommonJS test files on Node 20.
 */
const esmOnly = ['jose', 'oauth2-mock-server', 'is-plain-obj'];

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.(t|j|mj)s$': [
      '@swc/jest',
      {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
        module: { type: 'commonjs' },
      },
    ],
  },
  moduleFileExtensions: ['ts', 'js', 'mjs', 'json'],
  transformIgnorePatterns: [`/node_modules/(?!(${esmOnly.join('|')})/)`],
  testTimeout: 30000,
  // Two workers on the two cores: most suites wait on servers and child processes, so a
  // second worker shortens the run (jest's default is cores minus one: a single worker).
  maxWorkers: 2,
  setupFiles: ['<rootDir>/test/support/env.ts'],
  // Fails any test file that logs a token, secret or data key it produced (docs/security.md).
  setupFilesAfterEnv: ['<rootDir>/test/support/secret-scan.ts'],
};
