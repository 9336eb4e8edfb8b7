// Prints the one closing line CI reads ("N passed, N failed, N skipped") from the test runners' JSON
// reports (vitest, and Playwright when the e2e tests ran). Exit status 1 when anything failed or an
// expected report is missing (e.g. the typecheck stopped the run before the tests).
import { readFileSync, existsSync } from 'node:fs';

const reports = [
  { file: 'test-results/vitest.json', read: vitest },
  { file: 'test-results/playwright.json', read: playwright },
];
let passed = 0;
let failed = 0;
let skipped = 0;
for (const { file, read } of reports) {
  if (!existsSync(file)) {
    console.error(`no test report at ${file}: that runner did not run (see above)`);
    failed++;
    continue;
  }
  const counts = read(JSON.parse(readFileSync(file, 'utf8')));
  passed += counts.passed;
  failed += counts.failed;
  skipped += counts.skipped;
}

function vitest(report) {
  // A test file that failed to load counts as a failure even though none of its tests ran.
  const brokenFiles = report.testResults.filter((r) => r.status === 'failed' && r.assertionResults.length === 0).length;
  return {
    passed: report.numPassedTests,
    failed: report.numFailedTests + brokenFiles,
    skipped: report.numPendingTests + (report.numTodoTests ?? 0),
  };
}

function playwright(report) {
  const { expected = 0, unexpected = 0, flaky = 0, skipped = 0 } = report.stats ?? {};
  // Errors outside any test (global setup, a spec that fails to load) count as failures too.
  return { passed: expected + flaky, failed: unexpected + (report.errors?.length ?? 0), skipped };
}

console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
