import { defineConfig } from '@playwright/test';
import base from './playwright.config';

/**
 * `make bench-dom`: the browser benchmarks in ./bench (figures printed, nothing asserted on time).
 * Same browser and server as the tests (end2end/run.sh), no screenshots or reports.
 */
export default defineConfig({
  ...base,
  testDir: './bench',
  outputDir: './test-results/bench',
  timeout: 300_000,
  reporter: [['list']],
  use: { ...base.use, screenshot: 'off', trace: 'off' },
});
