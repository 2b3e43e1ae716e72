/**
 * `npm run --silent smoke -- --url https://host[:port] (--token … | --user …) [--json]`; in the
 * production image, without a build or npm: `node dist/smoke/smoke.command.js …` (the Kubernetes
 * Job in `k8s/smoke/` runs it after a deploy). Exit 0: every step passed; 1: a step failed (named,
 * with what was received); 2: bad usage.
 */
import { formatSmokeReport, runSmoke } from './smoke-check.js';
import { parseSmokeArguments, SMOKE_USAGE } from './smoke-options.js';
import { signSmokeToken } from './smoke-token.js';

const parsed = parseSmokeArguments(process.argv.slice(2), process.env);
if (parsed.kind === 'help') {
  process.stdout.write(SMOKE_USAGE);
  process.exit(0);
}
if (parsed.kind === 'invalid') {
  process.stderr.write(`${parsed.problems.map((problem) => `smoke: ${problem}`).join('\n')}\n\n${SMOKE_USAGE}`);
  process.exit(2);
}
const { options } = parsed;
const report = await (
  'token' in options.auth ? Promise.resolve(options.auth.token) : signSmokeToken(options.auth.user, process.env)
)
  .then((token) => runSmoke(options, token))
  .catch((error: unknown) => {
    // A failure of the command itself, not a finding about the service.
    process.stderr.write(`smoke: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  });
process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatSmokeReport(report));
// Exit once stdout is flushed: a pipe (a Job's log, `| jq`) must get the whole report.
process.stdout.write('', () => process.exit(report.ok ? 0 : 1));
