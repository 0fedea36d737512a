import * as os from 'os';
import * as path from 'path';
import { defineConfig } from 'vitest/config';

// Inside the stock-kernel guest (vm/run.sh sets BN_VM) only test/vm runs; elsewhere everything else.
const inVm = Boolean(process.env.BN_VM);

export default defineConfig({
  // The guest sees the checkout read-only.
  cacheDir: path.join(os.tmpdir(), 'bpftrace-net-vite'),
  test: {
    include: inVm ? ['test/vm/**/*.test.ts'] : ['test/unit/**/*.test.ts', 'test/e2e/**/*.test.ts'],
    // e2e files build namespaces and load BPF: keep them off each other's CPU.
    fileParallelism: false,
    reporters: ['default', './test/support/summary-reporter.ts'],
    globalSetup: ['./test/support/globalSetup.ts'],
    testTimeout: inVm ? 300_000 : 60_000,
    hookTimeout: inVm ? 300_000 : 60_000,
  },
});
