import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { parsePrometheus } from '../support/prometheus.js';
import { freePort, ServerProcess } from '../support/server-process.js';
import { signToken, TEST_JWT_SECRET } from '../support/tokens.js';
import { TestClient } from '../support/ws-client.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MONITORING = join(ROOT, 'k8s/monitoring');
const RULES_FILE = join(MONITORING, 'alert-rules.yaml');
const RULES_TEST_FILE = join(MONITORING, 'alert-rules.test.yaml');
const TIMELINE_FILE = join(ROOT, 'test-output/monitoring/alert-timeline.json');
const PROMTOOL = process.env.PROMTOOL_PATH ?? '/usr/bin/promtool';
const PROMETHEUS = process.env.PROMETHEUS_PATH ?? '/usr/bin/prometheus';
const PROMETHEUS_AVAILABLE = existsSync(PROMTOOL) && existsSync(PROMETHEUS);
const PROMETHEUS_SKIP_REASON = `Prometheus skipped: ${PROMTOOL} or ${PROMETHEUS} is missing; install them (apt-get install -y prometheus) or set PROMTOOL_PATH and PROMETHEUS_PATH to run these tests`;
const run = promisify(execFile);

interface Rule {
  readonly alert: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
}
interface RuleGroups {
  readonly groups: ReadonlyArray<{ readonly name: string; readonly rules: readonly Rule[] }>;
}
interface AnalysisMetric {
  readonly name: string;
  readonly successCondition: string;
  readonly provider: { readonly prometheus: { readonly address: string; readonly query: string } };
}
interface AnalysisTemplateSpec {
  readonly args: ReadonlyArray<{ readonly name: string; readonly value?: string }>;
  readonly metrics: readonly AnalysisMetric[];
}

const readYaml = <T>(file: string): T => parse(readFileSync(file, 'utf8')) as T;
const rules = (): RuleGroups => readYaml<RuleGroups>(RULES_FILE);
const alerts = (): Rule[] => rules().groups.flatMap((group) => group.rules);
const analysis = (): AnalysisTemplateSpec =>
  readYaml<{ spec: AnalysisTemplateSpec }>(join(MONITORING, 'analysis-template.yaml')).spec;

/** Every metric an expression reads, except kube-state-metrics' (not this service's). */
function metricNames(expression: string): string[] {
  return [...expression.matchAll(/\b(agent_gateway_[a-z_]+|process_[a-z_]+)\b/gu)].map((match) => match[1] ?? '');
}

/** The analysis's queries with its arguments filled in, as Argo Rollouts sends them. */
function analysisQueries(
  args: Record<string, string>,
): Array<{ name: string; query: string; successCondition: string }> {
  return analysis().metrics.map(({ name, successCondition, provider }) => ({
    name,
    successCondition,
    query: provider.prometheus.query.replace(/\{\{args\.([a-z-]+)\}\}/gu, (_, arg: string) => {
      const value = args[arg];
      if (value === undefined) throw new Error(`no value for {{args.${arg}}}`);
      return value;
    }),
  }));
}

const COMPARE: Readonly<Record<string, (a: number, b: number) => boolean>> = {
  '==': (a, b) => a === b,
  '!=': (a, b) => a !== b,
  '<=': (a, b) => a <= b,
  '<': (a, b) => a < b,
  '>=': (a, b) => a >= b,
  '>': (a, b) => a > b,
};

/**
 * Argo Rollouts' successCondition (an expr-lang expression), for the terms the template uses, joined
 * by `||`: `len(result) <op> N`, `isNaN(result[i])`, `result[i] <op> N`. Anything else throws.
 */
function meets(condition: string, result: readonly number[]): boolean {
  return condition.split('||').some((term) => {
    const text = term.trim();
    const nan = /^isNaN\(result\[(\d+)\]\)$/u.exec(text);
    if (nan !== null) return Number.isNaN(result[Number(nan[1])]);
    const comparison = /^(len\(result\)|result\[(\d+)\]) *(==|!=|<=|<|>=|>) *(-?\d+(?:\.\d+)?)$/u.exec(text);
    const compare = COMPARE[comparison?.[3] ?? ''];
    if (comparison === null || compare === undefined)
      throw new Error(`successCondition term this test cannot evaluate: ${text}`);
    const left = comparison[1] === 'len(result)' ? result.length : result[Number(comparison[2])];
    return left !== undefined && compare(left, Number(comparison[4]));
  });
}

describe('the alert rules and the rollout gate, held to the app', () => {
  it('ships the same groups as a plain rules file and as a PrometheusRule', () => {
    const operator = readYaml<{ spec: RuleGroups }>(join(MONITORING, 'prometheus-rule.yaml'));
    expect(operator.spec).toEqual(rules());
  });

  it('gives every alert a severity and a runbook entry in docs/deploy.md', () => {
    const deployDoc = readFileSync(join(ROOT, 'docs/deploy.md'), 'utf8');
    const headings = new Set([...deployDoc.matchAll(/^#### (\w+)$/gmu)].map((match) => match[1]));
    for (const rule of alerts()) {
      expect({ alert: rule.alert, severity: rule.labels.severity }).toEqual({
        alert: rule.alert,
        severity: expect.stringMatching(/^(warning|critical)$/u),
      });
      expect(rule.annotations.runbook).toBe(`docs/deploy.md#${rule.alert.toLowerCase()}`);
      expect(headings).toContain(rule.alert);
    }
    expect(alerts().map((rule) => rule.alert)).toEqual(
      expect.arrayContaining([
        'AgentGatewayInternalErrorCloses',
        'AgentGatewayAgentRunsFailing',
        'AgentGatewayReadinessFlapping',
        'AgentGatewayStartupSlow',
        'AgentGatewayStartupFailed',
        'AgentGatewayStuckDraining',
        'AgentGatewayFleetBusDegraded',
        'AgentGatewayFleetLeaseLost',
      ]),
    );
  });

  it('reads only metrics a running instance exposes (fleet ones: registered by fleet mode)', async () => {
    const server = await ServerProcess.start({ JWT_SECRET: TEST_JWT_SECRET });
    try {
      await server.ready();
      const scrape = parsePrometheus(await (await fetch(`${server.url}/metrics`)).text());
      const fleetSource = readFileSync(join(ROOT, 'src/metrics/fleet.metrics.ts'), 'utf8');
      const expressions = [
        ...alerts().map((rule) => rule.expr),
        ...analysis().metrics.map((m) => m.provider.prometheus.query),
      ];
      const missing = [...new Set(expressions.flatMap(metricNames))].filter((name) =>
        name.startsWith('agent_gateway_fleet_')
          ? !fleetSource.includes(`\${METRIC_PREFIX}${name.slice('agent_gateway_'.length)}`)
          : !scrape.types.has(name),
      );
      expect(missing).toEqual([]);
      // Present at 0 before any happens, so that the first one is an increase.
      expect(scrape.value('agent_gateway_ws_closes_total', { code: '1011' })).toBe(0);
      expect(scrape.value('agent_gateway_startup_timeout_seconds')).toBe(60);
    } finally {
      await server.stop();
    }
  });

  it('runs the smoke Job in the app image, against the Service, with the app secret', () => {
    interface EnvVar {
      readonly name: string;
      readonly valueFrom?: { readonly secretKeyRef?: Record<string, unknown> };
    }
    interface Container {
      readonly image: string;
      readonly command: readonly string[];
      readonly env: readonly EnvVar[];
    }
    interface PodOwner {
      readonly spec: {
        readonly template: {
          readonly spec: { readonly containers: readonly Container[]; readonly restartPolicy?: string };
        };
      };
    }
    const [app] = readYaml<PodOwner>(join(ROOT, 'k8s/base/deployment.yaml')).spec.template.spec.containers;
    const service = readYaml<{ metadata: { name: string }; spec: { ports: Array<{ port: number }> } }>(
      join(ROOT, 'k8s/base/service.yaml'),
    );
    const job = readYaml<PodOwner>(join(ROOT, 'k8s/smoke/job.yaml'));
    const [container] = job.spec.template.spec.containers;
    if (app === undefined || container === undefined) throw new Error('no container');
    expect(container.image).toBe(app.image);
    expect(container.command.slice(0, 2)).toEqual(['node', 'dist/smoke/smoke.command.js']);
    expect(existsSync(join(ROOT, 'dist/smoke/smoke.command.js'))).toBe(true);
    const url = new URL(container.command[container.command.indexOf('--url') + 1] ?? '');
    expect({ host: url.hostname, port: url.port === '' ? 80 : Number(url.port) }).toEqual({
      host: service.metadata.name,
      port: service.spec.ports[0]?.port,
    });
    const secretOf = (env: readonly EnvVar[]): Record<string, unknown> | undefined =>
      env.find((variable) => variable.name === 'JWT_SECRET')?.valueFrom?.secretKeyRef;
    expect(secretOf(container.env)).toEqual({ ...secretOf(app.env), optional: true });
    expect(job.spec.template.spec.restartPolicy).toBe('Never');
  });

  describe('with Prometheus', () => {
    if (!PROMETHEUS_AVAILABLE) {
      it.skip(PROMETHEUS_SKIP_REASON, () => {});
      return;
    }

    it('passes promtool check rules, for the rules and for the rollout gate queries', async () => {
      const checked = await run(PROMTOOL, ['check', 'rules', RULES_FILE]);
      expect(checked.stdout).toContain(`SUCCESS: ${alerts().length} rules found`);
      // The analysis queries as recording rules: promtool parses each one.
      const dir = mkdtempSync(join(tmpdir(), 'agent-gateway-rules-'));
      try {
        const file = join(dir, 'analysis.yaml');
        const queries = analysisQueries({ 'prometheus-address': 'http://unused', 'canary-hash': 'abc123' });
        writeFileSync(
          file,
          JSON.stringify({
            groups: [
              {
                name: 'analysis',
                rules: queries.map(({ name, query }) => ({
                  record: `analysis:${name.replaceAll('-', '_')}`,
                  expr: query,
                })),
              },
            ],
          }),
        );
        expect((await run(PROMTOOL, ['check', 'rules', file])).stdout).toContain(
          `SUCCESS: ${queries.length} rules found`,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('passes promtool test rules, with series that fire every alert', async () => {
      const { stdout } = await run(PROMTOOL, ['test', 'rules', RULES_TEST_FILE]);
      expect(stdout).toContain('SUCCESS');
      const tests = readYaml<{
        tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts: unknown[] }> }>;
      }>(RULES_TEST_FILE);
      const fired = new Set(
        tests.tests.flatMap((test) =>
          (test.alert_rule_test ?? []).filter((t) => t.exp_alerts.length > 0).map((t) => t.alertname),
        ),
      );
      expect([...fired].sort()).toEqual(
        alerts()
          .map((rule) => rule.alert)
          .sort(),
      );
    });

    describe('scraping a spawned instance whose model is down', () => {
      let server: ServerProcess;
      let prometheus: ChildProcess;
      let prometheusUrl: string;
      let dataDir: string;
      let client: TestClient | undefined;

      const query = async (expression: string): Promise<number[]> => {
        const response = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(expression)}`);
        const body = (await response.json()) as {
          status: string;
          error?: string;
          data: { result: Array<{ value: [number, string] }> };
        };
        if (body.status !== 'success') throw new Error(`${expression}: ${body.error ?? body.status}`);
        return body.data.result.map((sample) => Number(sample.value[1]));
      };
      /** Prometheus answers on its own schedule (scrapes, rule evaluations): asked again until `check` holds. */
      const until = async <T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> => {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const value = await check().catch(() => undefined);
          if (value !== undefined) return value;
          if (Date.now() > deadline) throw new Error(`Prometheus: ${what} not within ${timeoutMs} ms`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      };
      const alertState = async (name: string): Promise<string | undefined> => {
        const body = (await (await fetch(`${prometheusUrl}/api/v1/alerts`)).json()) as {
          data: { alerts: Array<{ labels: { alertname: string }; state: string }> };
        };
        return body.data.alerts.find((alert) => alert.labels.alertname === name)?.state;
      };

      beforeAll(async () => {
        server = await ServerProcess.start({
          JWT_SECRET: TEST_JWT_SECRET,
          LLM_PROVIDER: 'openai',
          LLM_MODEL: 'gpt-test',
          LLM_API_KEY: 'test-key',
          LLM_BASE_URL: `http://127.0.0.1:${await freePort()}/v1`,
          LLM_MAX_RETRIES: '0',
        });
        await server.ready();
        dataDir = mkdtempSync(join(tmpdir(), 'agent-gateway-prometheus-'));
        const port = await freePort();
        prometheusUrl = `http://127.0.0.1:${port}`;
        const config = {
          global: { scrape_interval: '1s', evaluation_interval: '1s' },
          rule_files: [RULES_FILE],
          scrape_configs: [
            {
              job_name: 'agent-gateway',
              static_configs: [
                // The label the rollout gate selects the new version's pods by.
                { targets: [`127.0.0.1:${server.port}`], labels: { rollouts_pod_template_hash: 'canary-e2e' } },
              ],
            },
          ],
        };
        writeFileSync(join(dataDir, 'prometheus.yml'), JSON.stringify(config));
        prometheus = spawn(
          PROMETHEUS,
          [
            `--config.file=${join(dataDir, 'prometheus.yml')}`,
            `--storage.tsdb.path=${join(dataDir, 'data')}`,
            `--web.listen-address=127.0.0.1:${port}`,
            '--log.level=warn',
          ],
          { stdio: 'ignore' },
        );
        await until('ready', async () => ((await fetch(`${prometheusUrl}/-/ready`)).ok ? true : undefined));
      });

      afterAll(async () => {
        await client?.close();
        if (prometheus !== undefined && prometheus.exitCode === null) {
          const exited = new Promise((resolve) => prometheus.once('exit', resolve));
          prometheus.kill('SIGTERM');
          await exited;
        }
        await server?.stop();
        if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
      });

      it('turns failing agent runs into AgentGatewayAgentRunsFailing, and fails the rollout gate on them alone', async () => {
        const startedAt = performance.now();
        const at = (): number => Math.round(performance.now() - startedAt);
        const timeline: Array<{ ms: number; what: string }> = [];
        const note = (what: string): void => {
          timeline.push({ ms: at(), what });
        };

        await until('the first scrape', async () =>
          (await query('up{job="agent-gateway"}'))[0] === 1 ? true : undefined,
        );
        note('Prometheus scrapes the instance (up 1)');
        client = new TestClient(server.url, { token: signToken({ sub: 'alerting-e2e' }) });
        await client.waitFor('connection_established');

        // One failing run per scrape, until the alert is pending: each failure is answered at once
        // (connection refused, no retries), and waiting for Prometheus to see it paces the runs.
        let failures = 0;
        let state: string | undefined;
        while (state === undefined) {
          const requestId = `failing-${failures}`;
          client.send('agent_request', { requestId, message: 'hello' });
          const end = await client.runEnd(requestId);
          expect(end).toMatchObject({ event: 'agent_error', data: { code: 'LLM_UNAVAILABLE' } });
          failures += 1;
          if (failures === 1) note('first agent run fails (agent_error LLM_UNAVAILABLE)');
          await until(`failure ${failures} scraped`, async () => {
            const [seen = 0] = await query('sum(agent_gateway_agent_runs_total{status="failed"})');
            return seen >= failures ? true : undefined;
          });
          if (failures === 1) note('Prometheus has the first failure');
          state = await alertState('AgentGatewayAgentRunsFailing');
        }
        note(`AgentGatewayAgentRunsFailing ${state} after ${failures} failed runs (fires after for: 5m)`);
        expect(state).toBe('pending');
        expect((await query('sum(agent_gateway_agent_runs_total{status="failed"})'))[0]).toBe(failures);

        // No 1011: that alert stays silent while the other is pending.
        expect(await alertState('AgentGatewayInternalErrorCloses')).toBeUndefined();

        // The rollout gate, as Argo Rollouts would evaluate it for this "canary".
        const verdicts: Record<string, boolean> = {};
        for (const { name, query: expression, successCondition } of analysisQueries({
          'prometheus-address': prometheusUrl,
          'canary-hash': 'canary-e2e',
        })) {
          verdicts[name] = meets(successCondition, await query(expression));
        }
        note(`rollout gate: ${JSON.stringify(verdicts)}`);
        expect(verdicts).toEqual({
          'internal-error-closes': true,
          'agent-run-failures': false,
          'startup-failures': true,
          'readiness-changes': true,
        });

        mkdirSync(join(TIMELINE_FILE, '..'), { recursive: true });
        writeFileSync(TIMELINE_FILE, `${JSON.stringify(timeline, null, 2)}\n`);
      });
    });
  });
});
