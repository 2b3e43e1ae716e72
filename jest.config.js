import { readFileSync } from 'node:fs';

// Nest 12 is ESM-only, so Jest runs in ESM mode (NODE_OPTIONS=--experimental-vm-modules, set by
// the npm scripts) with SWC compiling TypeScript, decorator metadata included. In ESM mode,
// replace collaborators through Nest DI overrides, never jest.mock.
// The compiler options live in one file, shared with `npm run dev` (src/dev/dev-build.ts).
const swc = ['@swc/jest', JSON.parse(readFileSync(new URL('./src/dev/swc.options.json', import.meta.url), 'utf8'))];

const common = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': swc },
};

/** @type {import('jest').Config} */
export default {
  // Integration and e2e tests boot whole applications; on a loaded 2-core machine (CI runs the
  // PostgreSQL suites beside the others) 5 s is too tight, and a hang is still caught.
  testTimeout: 20_000,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/src/**/*.spec.ts'] },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/test/integration/**/*.spec.ts'] },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/test/e2e/**/*.e2e-spec.ts'] },
  ],
};
