// Prints one plain closing line, `jest: N passed, N failed, N skipped`, that any CI log reader
// understands without knowing Jest's own summary format, preceded by every test skipped for want
// of an environment variable (named "… set TEST_DATABASE_URL=… to run", say) so that such a skip is
// never silent. Written at exit so it comes after Jest's own summary.
export default class SummaryReporter {
  onRunComplete(_contexts, results) {
    const { numPassedTests, numFailedTests, numPendingTests, numTodoTests } = results;
    const skipped = results.testResults.flatMap((file) =>
      file.testResults
        .filter((test) => test.status === 'pending' && /\bset [A-Z_]+=/u.test(test.fullName))
        .map((test) => test.fullName),
    );
    const lines = [
      ...[...new Set(skipped)].map((name) => `skipped: ${name}\n`),
      `jest: ${numPassedTests} passed, ${numFailedTests} failed, ${numPendingTests + numTodoTests} skipped\n`,
    ];
    process.once('exit', () => process.stderr.write(lines.join('')));
  }
}
