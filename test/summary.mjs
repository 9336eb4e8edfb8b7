// Prints the one closing line CI reads ("N passed, N failed, N skipped") from the test runners' JSON reports.
// Exit status 1 when anything failed or no report was written (e.g. the typecheck stopped the run).
import { readFileSync, existsSync } from 'node:fs';

const reports = ['test-results/vitest.json'];
let passed = 0;
let failed = 0;
let skipped = 0;
let missing = 0;
for (const file of reports) {
  if (!existsSync(file)) {
    console.error(`no test report at ${file}: the run stopped before the tests (see above)`);
    missing++;
    continue;
  }
  const report = JSON.parse(readFileSync(file, 'utf8'));
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  skipped += report.numPendingTests + (report.numTodoTests ?? 0);
  // A test file that failed to load counts as a failure even though none of its tests ran.
  failed += report.testResults.filter((r) => r.status === 'failed' && r.assertionResults.length === 0).length;
}
failed += missing;
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
