import { afterAll, describe, expect, it } from '@jest/globals';
import { AnalysisTemplate } from '@kubernetes-models/argo-rollouts/argoproj.io/v1alpha1/AnalysisTemplate';
import { Service as KnativeService } from '@kubernetes-models/knative/serving.knative.dev/v1';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Job } from 'kubernetes-models/batch/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { Secret, Service } from 'kubernetes-models/v1';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { SHUTDOWN_EXIT_MARGIN_MS } from '../../src/config/config.schema.js';
import { loadConfig } from '../../src/config/load-config.js';
import { containerProbes, type HttpProbe, type ManifestContainer } from '../support/probe-simulator.js';
import { ServerProcess } from '../support/server-process.js';
import { TEST_JWT_SECRET } from '../support/tokens.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const K8S = join(ROOT, 'k8s');
const KNATIVE_SERVICE = join(K8S, 'knative/service.yaml');
const DEPLOY_DOC = join(ROOT, 'docs/deploy.md');

/** Kubernetes' terminationGracePeriodSeconds when a pod sets none. */
const KUBERNETES_DEFAULT_GRACE_SECONDS = 30;
/** Knative's revision timeout when a Service sets none (config-defaults); Knative makes it the pod's grace period. */
const KNATIVE_DEFAULT_TIMEOUT_SECONDS = 300;
/** The queue-proxy's drain (/wait-for-drain, the user container's preStop) that comes before SIGTERM on Knative. */
const KNATIVE_DRAIN_SECONDS = 30;
/** Cloud Run's fixed time between SIGTERM and SIGKILL. */
const CLOUD_RUN_GRACE_SECONDS = 10;
/** Cloud Run rejects a startup probe whose failureThreshold × periodSeconds exceeds this. */
const CLOUD_RUN_MAX_STARTUP_SECONDS = 240;

/** Stand-ins for values kept in a Secret outside the repository: only their format matters here. */
const SECRET_PLACEHOLDERS: Readonly<Record<string, string>> = {
  JWT_SECRET: TEST_JWT_SECRET,
  DATABASE_URL: 'postgres://agent:secret@postgres:5432/agent_gateway',
  REDIS_URL: 'rediss://:secret@redis:6379/0',
  LLM_PROVIDER: 'openai',
  LLM_MODEL: 'gpt-4o-mini',
};

interface Manifest {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string };
  readonly [field: string]: unknown;
}

/** The validating model of every kind the repository ships; anything else is an error. */
const SCHEMAS: Readonly<Record<string, (manifest: Manifest) => { validate(): void }>> = {
  'apps/v1 Deployment': (manifest) => new Deployment(manifest),
  'v1 Service': (manifest) => new Service(manifest),
  'v1 Secret': (manifest) => new Secret(manifest),
  'policy/v1 PodDisruptionBudget': (manifest) => new PodDisruptionBudget(manifest),
  'autoscaling/v2 HorizontalPodAutoscaler': (manifest) => new HorizontalPodAutoscaler(manifest),
  'networking.k8s.io/v1 NetworkPolicy': (manifest) => new NetworkPolicy(manifest),
  'serving.knative.dev/v1 Service': (manifest) => new KnativeService(manifest),
  'batch/v1 Job': (manifest) => new Job(manifest),
  'monitoring.coreos.com/v1 PrometheusRule': (manifest) =>
    new PrometheusRule(manifest as unknown as ConstructorParameters<typeof PrometheusRule>[0]),
  'argoproj.io/v1alpha1 AnalysisTemplate': (manifest) =>
    new AnalysisTemplate(manifest as unknown as ConstructorParameters<typeof AnalysisTemplate>[0]),
};

/** Prometheus's own files under k8s/ (rules and their unit tests), not Kubernetes objects: monitoring.e2e-spec.ts holds them. */
const PROMETHEUS_FILES = new Set(
  ['monitoring/alert-rules.yaml', 'monitoring/alert-rules.test.yaml'].map((path) => join(K8S, path)),
);

function validate(manifest: Manifest): void {
  const schema = SCHEMAS[`${manifest.apiVersion} ${manifest.kind}`];
  if (schema === undefined) throw new Error(`no schema for ${manifest.apiVersion} ${manifest.kind}: add it to SCHEMAS`);
  schema(manifest).validate();
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const rel = (file: string): string => relative(ROOT, file);

/** The one object of `kind`, seen through the fields a test reads (validated by its schema elsewhere). */
function only<T>(objects: readonly Manifest[], kind: string): T {
  const found = objects.filter((object) => object.kind === kind);
  if (found.length !== 1) throw new Error(`expected exactly one ${kind}, found ${found.length}`);
  return found[0] as unknown as T;
}

function parseYaml(text: string, where: string): unknown[] {
  const documents = [...parseAllDocuments(text)];
  const errors = documents.flatMap((document) => document.errors.map((error) => `${where}: ${error.message}`));
  if (errors.length > 0) throw new Error(errors.join('\n'));
  return documents.map((document) => document.toJS() as unknown).filter((value) => value !== null);
}

const readYaml = (file: string): unknown[] => parseYaml(readFileSync(file, 'utf8'), rel(file));

function asManifest(value: unknown, where: string): Manifest {
  if (
    !isRecord(value) ||
    typeof value.apiVersion !== 'string' ||
    typeof value.kind !== 'string' ||
    !isRecord(value.metadata) ||
    typeof value.metadata.name !== 'string'
  ) {
    throw new Error(`${where}: not a Kubernetes object (apiVersion, kind and metadata.name)`);
  }
  return value as Manifest;
}

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return yamlFiles(path);
    return /\.ya?ml$/u.test(entry.name) ? [path] : [];
  });
}

// --- kustomize, the part of it these overlays use -------------------------------------------------
// No kustomize binary here, so the test builds overlays itself. It applies exactly what the
// kustomizations use and fails on anything else, so an overlay cannot quietly outgrow it.

interface Kustomization {
  readonly resources?: string[];
  readonly patches?: Array<{ path?: string; patch?: string; target?: unknown }>;
  readonly secretGenerator?: Array<{ name: string; literals?: string[]; [field: string]: unknown }>;
  readonly generatorOptions?: { disableNameSuffixHash?: boolean; [field: string]: unknown };
}

const APPLIED_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'patches', 'secretGenerator', 'generatorOptions']);

function readKustomization(dir: string): Kustomization {
  const [kustomization] = readYaml(join(dir, 'kustomization.yaml'));
  if (!isRecord(kustomization) || kustomization.kind !== 'Kustomization') {
    throw new Error(`${rel(dir)}/kustomization.yaml: not a Kustomization`);
  }
  const unapplied = Object.keys(kustomization).filter((field) => !APPLIED_FIELDS.has(field));
  if (unapplied.length > 0) throw new Error(`${rel(dir)}: this test does not apply ${unapplied.join(', ')}`);
  return kustomization;
}

/** Lists that strategic merge patches merge item by item, and the key it matches items by. */
const MERGE_KEYS: Readonly<Record<string, string>> = {
  containers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
};

function strategicMerge(target: unknown, patch: unknown, path: string): unknown {
  if (isRecord(patch)) {
    const directive = Object.keys(patch).find((key) => key.startsWith('$'));
    if (directive !== undefined) throw new Error(`${path}: ${directive} is not applied by this test`);
    if (!isRecord(target)) return patch;
    const merged: Record<string, unknown> = { ...target };
    for (const [key, value] of Object.entries(patch)) {
      if (value === null) delete merged[key];
      else merged[key] = key in target ? strategicMerge(target[key], value, `${path}.${key}`) : value;
    }
    return merged;
  }
  if (Array.isArray(patch) && Array.isArray(target)) {
    const [items, changes]: unknown[][] = [target, patch];
    const field = path.slice(path.lastIndexOf('.') + 1);
    const key = MERGE_KEYS[field];
    if (key === undefined)
      throw new Error(`${path}: list patches are only applied to ${Object.keys(MERGE_KEYS).join(', ')}`);
    const find = (list: unknown[], item: unknown): unknown =>
      list.find((candidate) => isRecord(candidate) && isRecord(item) && candidate[key] === item[key]);
    return [
      ...items.map((item) => {
        const change = find(changes, item);
        return change === undefined ? item : strategicMerge(item, change, path);
      }),
      ...changes.filter((item) => find(items, item) === undefined),
    ];
  }
  return patch;
}

/** `kustomize build dir`, for the features {@link readKustomization} admits. */
function kustomize(dir: string): Manifest[] {
  const kustomization = readKustomization(dir);
  let objects = (kustomization.resources ?? []).flatMap((resource) => {
    const path = resolve(dir, resource);
    if (statSync(path).isDirectory()) return kustomize(path);
    return readYaml(path).map((value) => asManifest(value, rel(path)));
  });
  for (const generator of kustomization.secretGenerator ?? []) {
    const unapplied = Object.keys(generator).filter((field) => field !== 'name' && field !== 'literals');
    if (unapplied.length > 0) throw new Error(`${rel(dir)}: secretGenerator ${unapplied.join(', ')} is not applied`);
    // With the hash suffix kustomize would also rename every reference to the Secret.
    if (kustomization.generatorOptions?.disableNameSuffixHash !== true) {
      throw new Error(`${rel(dir)}: generated names with a hash suffix are not applied by this test`);
    }
    const data = Object.fromEntries(
      (generator.literals ?? []).map((literal) => {
        const at = literal.indexOf('=');
        return [literal.slice(0, at), Buffer.from(literal.slice(at + 1)).toString('base64')];
      }),
    );
    objects.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name: generator.name }, type: 'Opaque', data });
  }
  for (const entry of kustomization.patches ?? []) {
    if (entry.target !== undefined) throw new Error(`${rel(dir)}: patches with a target are not applied`);
    const source = entry.path === undefined ? `${rel(dir)} (inline patch)` : rel(resolve(dir, entry.path));
    const documents =
      entry.path === undefined ? parseYaml(entry.patch ?? '', source) : readYaml(resolve(dir, entry.path));
    for (const document of documents) {
      const { $patch: directive, ...patch } = isRecord(document) ? document : {};
      const { apiVersion, kind, metadata } = asManifest(patch, source);
      const index = objects.findIndex(
        (object) => object.apiVersion === apiVersion && object.kind === kind && object.metadata.name === metadata.name,
      );
      if (index < 0) throw new Error(`${source}: no ${apiVersion} ${kind} ${metadata.name} to patch`);
      if (directive === 'delete') objects = objects.filter((_, at) => at !== index);
      else if (directive === undefined) objects[index] = strategicMerge(objects[index], patch, kind) as Manifest;
      else throw new Error(`${source}: $patch: ${JSON.stringify(directive)} is not applied`);
    }
  }
  return objects;
}

/** Every file a kustomization under `dir` names as a patch (a partial object: validated merged). */
function patchFiles(dir: string): Set<string> {
  return new Set(
    yamlFiles(dir)
      .filter((file) => basename(file) === 'kustomization.yaml')
      .flatMap((file) =>
        (readKustomization(dirname(file)).patches ?? []).flatMap((entry) =>
          entry.path === undefined ? [] : [resolve(dirname(file), entry.path)],
        ),
      ),
  );
}

// --- workloads: where a container runs, and what the platform does to it on the way out --------

interface Workload {
  readonly name: string;
  readonly platform: 'kubernetes' | 'knative' | 'cloud-run';
  readonly container: ManifestContainer;
  /** Seconds from the decision to stop the pod to SIGKILL. */
  readonly graceSeconds: number;
  /** The part of it spent before SIGTERM reaches the app (preStop). */
  readonly beforeSigtermSeconds: number;
  /** Secrets the same manifests create (the rest come from outside: see SECRET_PLACEHOLDERS). */
  readonly secrets: readonly Manifest[];
  /** The pod's (or revision's) annotations. */
  readonly annotations: Readonly<Record<string, string>>;
}

interface PodTemplateView {
  readonly metadata?: { readonly annotations?: Record<string, string> };
  readonly spec?: PodSpecView;
}

interface PodSpecView {
  readonly containers?: ManifestContainer[];
  readonly terminationGracePeriodSeconds?: number;
  readonly timeoutSeconds?: number;
}

function onlyContainer(spec: PodSpecView | undefined, where: string): ManifestContainer {
  const containers = spec?.containers ?? [];
  if (containers.length !== 1) throw new Error(`${where}: expected exactly one container`);
  return containers[0];
}

function preStopSeconds(container: ManifestContainer, where: string): number {
  const preStop = container.lifecycle?.preStop;
  if (preStop === undefined) return 0;
  if (preStop.sleep !== undefined) return preStop.sleep.seconds;
  const [command, seconds, ...rest] = preStop.exec?.command ?? [];
  if (/(^|\/)sleep$/u.test(command ?? '') && rest.length === 0 && Number.isFinite(Number(seconds))) {
    return Number(seconds);
  }
  throw new Error(`${where}: a preStop hook other than a sleep cannot be timed`);
}

function deploymentWorkload(name: string, objects: readonly Manifest[]): Workload {
  const template = only<{ spec?: { template?: PodTemplateView } }>(objects, 'Deployment').spec?.template;
  const pod = template?.spec;
  const container = onlyContainer(pod, name);
  return {
    name,
    platform: 'kubernetes',
    container,
    graceSeconds: pod?.terminationGracePeriodSeconds ?? KUBERNETES_DEFAULT_GRACE_SECONDS,
    beforeSigtermSeconds: preStopSeconds(container, name),
    secrets: objects.filter((object) => object.kind === 'Secret'),
    annotations: template?.metadata?.annotations ?? {},
  };
}

function servingWorkload(name: string, service: Manifest, platform: 'knative' | 'cloud-run'): Workload {
  const template = (service as { spec?: { template?: PodTemplateView } }).spec?.template;
  const revision = template?.spec;
  return {
    name,
    platform,
    container: onlyContainer(revision, name),
    graceSeconds:
      platform === 'knative' ? (revision?.timeoutSeconds ?? KNATIVE_DEFAULT_TIMEOUT_SECONDS) : CLOUD_RUN_GRACE_SECONDS,
    beforeSigtermSeconds: platform === 'knative' ? KNATIVE_DRAIN_SECONDS : 0,
    secrets: [],
    annotations: template?.metadata?.annotations ?? {},
  };
}

/** The YAML examples in docs/deploy.md, parsed. */
function docExamples(): unknown[] {
  const text = readFileSync(DEPLOY_DOC, 'utf8');
  return [...text.matchAll(/^```ya?ml\n([\s\S]*?)^```/gmu)].flatMap((match, index) =>
    parseYaml(match[1], `${rel(DEPLOY_DOC)} (YAML example ${index + 1})`),
  );
}

function cloudRunService(): Manifest {
  const services = docExamples()
    .filter((example) => isRecord(example) && example.apiVersion === 'serving.knative.dev/v1')
    .map((example) => asManifest(example, rel(DEPLOY_DOC)));
  if (services.length !== 1) throw new Error(`${rel(DEPLOY_DOC)}: expected one Cloud Run service YAML example`);
  return services[0];
}

function workloads(): Workload[] {
  return [
    deploymentWorkload('k8s/base', kustomize(join(K8S, 'base'))),
    deploymentWorkload('k8s/overlays/development', kustomize(join(K8S, 'overlays/development'))),
    deploymentWorkload('k8s/overlays/production', kustomize(join(K8S, 'overlays/production'))),
    deploymentWorkload('k8s/overlays/fleet', kustomize(join(K8S, 'overlays/fleet'))),
    servingWorkload('k8s/knative', asManifest(readYaml(KNATIVE_SERVICE)[0], rel(KNATIVE_SERVICE)), 'knative'),
    servingWorkload('docs/deploy.md (Cloud Run)', cloudRunService(), 'cloud-run'),
  ];
}

/** A Secret's value from the manifests that create it, or a stand-in for one kept outside. */
function secretValue(
  workload: Workload,
  variable: string,
  ref: { name?: string; key: string; optional?: boolean },
): string | undefined {
  const secret = workload.secrets.find((candidate) => candidate.metadata.name === ref.name);
  if (secret === undefined) return SECRET_PLACEHOLDERS[variable];
  const encoded = (secret.data as Record<string, string> | undefined)?.[ref.key];
  return encoded === undefined ? undefined : Buffer.from(encoded, 'base64').toString();
}

/** The environment the app would see in the workload's container, secrets resolved. */
function appEnvironment(workload: Workload): Record<string, string> {
  const env: Record<string, string> = {};
  for (const variable of workload.container.env ?? []) {
    const ref = variable.valueFrom?.secretKeyRef;
    if (variable.value !== undefined) {
      env[variable.name] = variable.value;
      continue;
    }
    if (ref === undefined) throw new Error(`${workload.name}: ${variable.name} has neither a value nor a secretKeyRef`);
    const value = secretValue(workload, variable.name, ref);
    // An optional key missing from its Secret leaves the variable unset, as the kubelet does.
    if (value === undefined && ref.optional === true) continue;
    if (value === undefined)
      throw new Error(`${workload.name}: ${variable.name}: no ${ref.key} in Secret ${ref.name ?? '(unnamed)'}`);
    env[variable.name] = value;
  }
  if (workload.platform !== 'kubernetes') {
    // Knative and Cloud Run reserve PORT and set it to the container port.
    if ('PORT' in env) throw new Error(`${workload.name}: PORT is reserved by the platform`);
    env.PORT = String(containerProbes(workload.container).containerPort);
  }
  return env;
}

/**
 * The probes each manifest declares: Knative runs readiness in its queue-proxy and only recent
 * releases take a start-up probe; Cloud Run's readiness probes are a preview.
 */
const EXPECTED_PROBES: Readonly<Record<Workload['platform'], readonly string[]>> = {
  kubernetes: ['startup', 'readiness', 'liveness'],
  knative: ['readiness', 'liveness'],
  'cloud-run': ['startup', 'liveness'],
};

/** The path Prometheus scrapes on the workload's pods (`prometheus.io/*` annotations), if it is asked to. */
const scrapePath = (workload: Workload): string[] =>
  workload.annotations['prometheus.io/scrape'] === 'true'
    ? [workload.annotations['prometheus.io/path'] ?? '/metrics']
    : [];

const probesOf = (workload: Workload): HttpProbe[] => {
  const { startup, readiness, liveness } = containerProbes(workload.container);
  return [startup, readiness, liveness].filter((probe): probe is HttpProbe => probe !== undefined);
};

describe('the deployment files, held to the app', () => {
  let server: ServerProcess | undefined;

  afterAll(async () => {
    await server?.stop();
  });

  it('parses every YAML document under k8s/ and in docs/deploy.md, and validates every object against its Kubernetes or Knative schema', () => {
    const patches = patchFiles(K8S);
    const problems: string[] = [];
    const validated: string[] = [];
    const check = (where: string, work: () => void): void => {
      try {
        work();
      } catch (error) {
        problems.push(`${where}: ${error instanceof Error ? error.message : String(error)}`);
      }
    };
    for (const file of yamlFiles(K8S).filter((candidate) => !PROMETHEUS_FILES.has(candidate))) {
      check(rel(file), () => {
        const documents = readYaml(file);
        if (basename(file) === 'kustomization.yaml') readKustomization(dirname(file));
        else if (!patches.has(file)) {
          for (const document of documents) {
            const manifest = asManifest(document, rel(file));
            validate(manifest);
            validated.push(`${rel(file)}: ${manifest.kind}`);
          }
        }
      });
    }
    check(rel(DEPLOY_DOC), () => {
      for (const example of docExamples()) {
        if (isRecord(example) && 'apiVersion' in example) validate(asManifest(example, rel(DEPLOY_DOC)));
      }
    });
    expect(problems).toEqual([]);
    expect(validated.sort()).toEqual([
      'k8s/base/deployment.yaml: Deployment',
      'k8s/base/hpa.yaml: HorizontalPodAutoscaler',
      'k8s/base/pdb.yaml: PodDisruptionBudget',
      'k8s/base/service.yaml: Service',
      'k8s/knative/service.yaml: Service',
      'k8s/monitoring/analysis-template.yaml: AnalysisTemplate',
      'k8s/monitoring/prometheus-rule.yaml: PrometheusRule',
      'k8s/overlays/fleet/networkpolicy.yaml: NetworkPolicy',
      'k8s/smoke/job.yaml: Job',
    ]);
  });

  it('names only files that exist in each kustomization, and leaves no manifest under k8s/ unused', () => {
    const used = new Set([KNATIVE_SERVICE, ...PROMETHEUS_FILES]);
    for (const file of yamlFiles(K8S).filter((candidate) => basename(candidate) === 'kustomization.yaml')) {
      const dir = dirname(file);
      const kustomization = readKustomization(dir);
      used.add(file);
      const named = [
        ...(kustomization.resources ?? []),
        ...(kustomization.patches ?? []).flatMap((entry) => (entry.path === undefined ? [] : [entry.path])),
      ].map((path) => resolve(dir, path));
      expect(named.filter((path) => !existsSync(path)).map(rel)).toEqual([]);
      for (const path of named) used.add(path);
    }
    expect(
      yamlFiles(K8S)
        .filter((file) => !used.has(file))
        .map(rel),
    ).toEqual([]);
  });

  it('builds the development overlay into one SQLite replica in an emptyDir, without autoscaler or budget, every object valid', () => {
    const objects = kustomize(join(K8S, 'overlays/development'));
    for (const object of objects) validate(object);
    expect(objects.map((object) => object.kind).sort()).toEqual(['Deployment', 'Secret', 'Service']);
    const deployment = only<{
      spec: { replicas?: number; template: { spec: { volumes?: Array<{ name: string; emptyDir?: object }> } } };
    }>(objects, 'Deployment');
    expect(deployment.spec.replicas).toBe(1);
    const workload = deploymentWorkload('k8s/overlays/development', objects);
    const { config } = loadConfig(appEnvironment(workload));
    const file = config.database.url.replace(/^sqlite:/u, '');
    expect(config.database.url).toMatch(/^sqlite:\//u);
    const mount = (
      workload.container as { volumeMounts?: Array<{ name: string; mountPath: string }> }
    ).volumeMounts?.find((candidate) => candidate.mountPath === dirname(file));
    expect(mount).toBeDefined();
    const volume = deployment.spec.template.spec.volumes?.find((candidate) => candidate.name === mount?.name);
    expect(volume?.emptyDir).toBeDefined();
    // Not production, so that the chat page can sign in (POST /dev/token, loopback peers only: through
    // kubectl port-forward); on every interface, for the kubelet's probes; signed with a secret of its
    // own, not the public built-in one.
    expect({ env: config.env, host: config.http.host, builtInSecret: config.auth.usingDevelopmentSecret }).toEqual({
      env: 'development',
      host: '0.0.0.0',
      builtInSecret: false,
    });
  });

  it('builds the production overlay into 3 to 10 PostgreSQL replicas whose connections fit one server, every object valid', () => {
    const objects = kustomize(join(K8S, 'overlays/production'));
    for (const object of objects) validate(object);
    expect(objects.map((object) => object.kind).sort()).toEqual([
      'Deployment',
      'HorizontalPodAutoscaler',
      'PodDisruptionBudget',
      'Service',
    ]);
    const deployment = only<{ spec: { replicas?: number } }>(objects, 'Deployment');
    const hpa = only<{
      spec: { minReplicas: number; maxReplicas: number; scaleTargetRef: { kind: string; name: string } };
    }>(objects, 'HorizontalPodAutoscaler');
    // The autoscaler owns the replica count; a fixed one would be reset to on every apply.
    expect(deployment.spec.replicas).toBeUndefined();
    expect(hpa.spec).toMatchObject({
      minReplicas: 3,
      maxReplicas: 10,
      scaleTargetRef: { kind: 'Deployment', name: 'agent-gateway' },
    });
    const workload = deploymentWorkload('k8s/overlays/production', objects);
    expect(
      workload.container.env?.find((variable) => variable.name === 'DATABASE_URL')?.valueFrom?.secretKeyRef,
    ).toEqual({ name: 'agent-gateway', key: 'DATABASE_URL' });
    const { config } = loadConfig(appEnvironment(workload));
    // PostgreSQL's default max_connections is 100.
    expect(config.database.poolSize * hpa.spec.maxReplicas).toBeLessThanOrEqual(100);
  });

  it('builds the fleet overlay: production plus Redis and the model from the Secret, no session affinity, spread over nodes and zones, a NetworkPolicy for its dependencies, scraped on /metrics, every object valid', () => {
    const objects = kustomize(join(K8S, 'overlays/fleet'));
    for (const object of objects) validate(object);
    expect(objects.map((object) => object.kind).sort()).toEqual([
      'Deployment',
      'HorizontalPodAutoscaler',
      'NetworkPolicy',
      'PodDisruptionBudget',
      'Service',
    ]);
    const workload = deploymentWorkload('k8s/overlays/fleet', objects);
    const env = new Map((workload.container.env ?? []).map((variable) => [variable.name, variable]));

    // Secrets come from the Secret production already reads, never from a literal in the manifest.
    for (const name of ['JWT_SECRET', 'DATABASE_URL', 'REDIS_URL']) {
      expect({ name, ref: env.get(name)?.valueFrom?.secretKeyRef }).toEqual({
        name,
        ref: { name: 'agent-gateway', key: name },
      });
    }
    // The model's settings too; only the provider is required, the app checks the rest.
    expect(
      ['LLM_PROVIDER', 'LLM_MODEL', 'LLM_BASE_URL', 'LLM_API_KEY'].map((name) => ({
        name,
        value: env.get(name)?.value,
        secret: env.get(name)?.valueFrom?.secretKeyRef?.name,
        optional: env.get(name)?.valueFrom?.secretKeyRef?.optional === true,
      })),
    ).toEqual([
      { name: 'LLM_PROVIDER', value: undefined, secret: 'agent-gateway', optional: false },
      { name: 'LLM_MODEL', value: undefined, secret: 'agent-gateway', optional: true },
      { name: 'LLM_BASE_URL', value: undefined, secret: 'agent-gateway', optional: true },
      { name: 'LLM_API_KEY', value: undefined, secret: 'agent-gateway', optional: true },
    ]);
    // Fleet mode needs PostgreSQL beside REDIS_URL; the app boots with what the overlay gives it.
    const environment = appEnvironment(workload);
    expect(environment.REDIS_URL).toMatch(/^rediss?:\/\//u);
    const { config } = loadConfig(environment);
    expect(config.database.url).toMatch(/^postgres(ql)?:\/\//u);
    expect(config.llm.provider).toBe('openai');

    // Any replica serves any client: affinity is switched off explicitly.
    const service = only<{ spec: { sessionAffinity?: string } }>(objects, 'Service');
    expect(service.spec.sessionAffinity).toBe('None');

    const deployment = only<{
      spec: {
        template: {
          metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
          spec: {
            topologySpreadConstraints?: Array<{
              topologyKey: string;
              whenUnsatisfiable: string;
              labelSelector?: { matchLabels?: Record<string, string> };
            }>;
          };
        };
      };
    }>(objects, 'Deployment');
    const podLabels = deployment.spec.template.metadata.labels;
    const selects = (matchLabels: Record<string, string> | undefined): boolean =>
      Object.entries(matchLabels ?? {}).length > 0 &&
      Object.entries(matchLabels ?? {}).every(([label, value]) => podLabels[label] === value);
    const spread = deployment.spec.template.spec.topologySpreadConstraints ?? [];
    expect(spread.filter((constraint) => !selects(constraint.labelSelector?.matchLabels))).toEqual([]);
    expect(spread.map(({ topologyKey, whenUnsatisfiable }) => ({ topologyKey, whenUnsatisfiable }))).toEqual(
      expect.arrayContaining([
        { topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: expect.any(String) },
        // A zone short of room must never stop the autoscaler.
        { topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway' },
      ]),
    );

    // Prometheus scrapes the port the app listens on, at the path the app serves its metrics on.
    const { containerPort } = containerProbes(workload.container);
    expect(containerPort).toBe(config.http.port);
    expect(deployment.spec.template.metadata.annotations).toMatchObject({
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': String(containerPort),
      'prometheus.io/path': '/metrics',
    });

    // The NetworkPolicy covers these pods, lets the cluster reach the app's port, and lets the app
    // reach DNS, PostgreSQL, Redis and the model.
    type Port = { protocol?: string; port?: number | string };
    type Rule = { ports?: Port[] };
    const policy = only<{
      spec: {
        podSelector: { matchLabels?: Record<string, string> };
        policyTypes: string[];
        ingress?: Array<Rule & { from?: object[] }>;
        egress?: Rule[];
      };
    }>(objects, 'NetworkPolicy');
    expect(selects(policy.spec.podSelector.matchLabels)).toBe(true);
    expect([...policy.spec.policyTypes].sort()).toEqual(['Egress', 'Ingress']);
    const portNumber = (port: number | string | undefined): number | undefined =>
      typeof port === 'string'
        ? workload.container.ports?.find((candidate) => candidate.name === port)?.containerPort
        : port;
    const opened = (rules: Rule[] | undefined): string[] =>
      (rules ?? []).flatMap((rule) =>
        (rule.ports ?? []).map(({ protocol, port }) => `${protocol ?? 'TCP'}/${portNumber(port) ?? 'any'}`),
      );
    expect(opened(policy.spec.ingress)).toEqual([`TCP/${containerPort}`]);
    expect((policy.spec.ingress ?? []).every((rule) => (rule.from ?? []).length > 0)).toBe(true);
    expect(opened(policy.spec.egress).sort()).toEqual(['TCP/443', 'TCP/53', 'TCP/5432', 'TCP/6379', 'UDP/53']);
  });

  it('points every probe at a path the running app answers 200 once ready, on the port it listens on', async () => {
    const all = workloads();
    // The base Deployment's own environment boots the app; ServerProcess picks the port, the host
    // and an in-memory database, and the secrets are stand-ins.
    const { PORT: _port, HOST: _host, DATABASE_URL: _database, ...env } = appEnvironment(all[0]);
    const running = await ServerProcess.start(env);
    server = running;
    await Promise.race([
      running.ready(),
      running.exited.then(({ code }) => {
        throw new Error(
          `the app exited (${code}) with the base Deployment's environment:\n${running.output.join('\n')}`,
        );
      }),
    ]);

    const answers: Array<{
      workload: string;
      probe: string;
      path: string;
      port: number;
      listensOn: number;
      status: number;
    }> = [];
    for (const workload of all) {
      const listensOn = loadConfig(appEnvironment(workload)).config.http.port;
      const probes = probesOf(workload);
      expect({ workload: workload.name, probes: probes.map((probe) => probe.kind) }).toEqual({
        workload: workload.name,
        probes: EXPECTED_PROBES[workload.platform],
      });
      for (const probe of probes) {
        const response = await fetch(server.url + probe.path);
        answers.push({
          workload: workload.name,
          probe: probe.kind,
          path: probe.path,
          port: probe.port,
          listensOn,
          status: response.status,
        });
      }
    }
    expect(answers.filter((answer) => answer.status !== 200 || answer.port !== answer.listensOn)).toEqual([]);
    // Where a workload asks Prometheus to scrape it, the app answers in Prometheus' text format.
    for (const path of new Set(all.flatMap((workload) => scrapePath(workload)))) {
      const response = await fetch(server.url + path);
      expect({ path, status: response.status, type: response.headers.get('content-type') }).toEqual({
        path,
        status: 200,
        type: expect.stringMatching(/^text\/plain/u),
      });
      expect(await response.text()).toMatch(/^# HELP agent_gateway_/mu);
    }
    // Only /health/live may restart a pod: liveness never looks at readiness, nor the reverse.
    expect(answers.filter((answer) => (answer.probe === 'liveness') !== (answer.path === '/health/live'))).toEqual([]);

    // The Service sends its traffic to that same port.
    const service = only<{ spec?: { ports?: Array<{ targetPort: string | number }> } }>(
      kustomize(join(K8S, 'base')),
      'Service',
    );
    const base = all[0];
    const targets = (service.spec?.ports ?? []).map(
      ({ targetPort }) =>
        base.container.ports?.find((port) => port.name === targetPort || port.containerPort === targetPort)
          ?.containerPort,
    );
    expect(targets).toEqual([loadConfig(appEnvironment(base)).config.http.port]);
  }, 30_000);

  it('gives every workload a grace period that covers preStop + SHUTDOWN_DELAY_MS + SHUTDOWN_TIMEOUT_MS + 2 s, and the app boots with the budget it is told', () => {
    const budgets = workloads().map((workload) => {
      // loadConfig applies the app's own defaults, and throws where the app would refuse to boot.
      const { shutdown } = loadConfig(appEnvironment(workload)).config;
      return {
        workload: workload.name,
        graceMs: workload.graceSeconds * 1000,
        drainMs: workload.beforeSigtermSeconds * 1000 + shutdown.delayMs + shutdown.timeoutMs + SHUTDOWN_EXIT_MARGIN_MS,
        afterSigtermMs: (workload.graceSeconds - workload.beforeSigtermSeconds) * 1000,
        toldMs: shutdown.gracePeriodMs,
        // Knative's drain lasts at least its 30 s, so the app may be told less than it gets.
        exact: workload.platform !== 'knative',
      };
    });
    expect(budgets.filter((budget) => budget.drainMs > budget.graceMs)).toEqual([]);
    expect(
      budgets.filter((budget) =>
        budget.exact ? budget.toldMs !== budget.afterSigtermMs : budget.toldMs > budget.afterSigtermMs,
      ),
    ).toEqual([]);
  });

  it('takes a draining pod out of service within SHUTDOWN_DELAY_MS, and lets a slow start reach STARTUP_TIMEOUT_MS before a probe gives up', () => {
    const findings = workloads()
      .filter((workload) => workload.platform !== 'knative')
      .flatMap((workload) => {
        const { config } = loadConfig(appEnvironment(workload));
        const { startup, readiness } = containerProbes(workload.container);
        const startupWindowMs =
          startup === undefined
            ? 0
            : (startup.initialDelaySeconds + startup.periodSeconds * startup.failureThreshold) * 1000;
        const problems: string[] = [];
        if (startupWindowMs < config.readiness.startupTimeoutMs) {
          problems.push(`startup probe gives up after ${startupWindowMs} ms, before STARTUP_TIMEOUT_MS`);
        }
        if (workload.platform === 'cloud-run' && startupWindowMs > CLOUD_RUN_MAX_STARTUP_SECONDS * 1000) {
          problems.push(`Cloud Run rejects a startup window over ${CLOUD_RUN_MAX_STARTUP_SECONDS} s`);
        }
        // Cloud Run stops routing to an instance before SIGTERM; Kubernetes consumers may follow readiness alone.
        if (workload.platform === 'kubernetes' && readiness !== undefined) {
          const removalMs = readiness.periodSeconds * readiness.failureThreshold * 1000;
          if (removalMs > config.shutdown.delayMs) {
            problems.push(`readiness takes ${removalMs} ms to remove the pod, more than SHUTDOWN_DELAY_MS`);
          }
        }
        return problems.map((problem) => `${workload.name}: ${problem}`);
      });
    expect(findings).toEqual([]);
  });

  it('builds a Node 24 image that runs the bundle in exec form, as a non-root user, stopping on SIGTERM, its compile cache warmed at build', () => {
    const instructions = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
      .replace(/\\\n/gu, ' ')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'))
      .map((line) => {
        const [keyword, ...rest] = line.split(/\s+/u);
        return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
      });
    const froms = instructions.filter((instruction) => instruction.keyword === 'FROM');
    expect(froms.length).toBeGreaterThan(1);
    expect(froms.filter((from) => !/^node:24(-|\s|$)/u.test(from.args))).toEqual([]);
    const runtime = instructions.slice(instructions.lastIndexOf(froms[froms.length - 1]));
    const last = (keyword: string): string | undefined =>
      runtime.filter((instruction) => instruction.keyword === keyword).at(-1)?.args;

    expect(JSON.parse(last('CMD') ?? 'null')).toEqual(['node', 'dist/bundle/main.mjs']);
    // Warmed as the user it runs as: Node keeps one compile cache per user id.
    expect(
      runtime.some(
        (instruction) => instruction.keyword === 'ENV' && instruction.args.startsWith('NODE_COMPILE_CACHE='),
      ),
    ).toBe(true);
    const warmUp = runtime.findIndex(
      (instruction) => instruction.keyword === 'RUN' && instruction.args.includes('warm-compile-cache.command.js'),
    );
    expect(warmUp).toBeGreaterThan(-1);
    expect(
      runtime
        .slice(0, warmUp)
        .filter((instruction) => instruction.keyword === 'USER')
        .at(-1)?.args,
    ).toBe(last('USER'));
    expect(last('ENTRYPOINT')).toBeUndefined();
    expect(last('STOPSIGNAL')).toBe('SIGTERM');
    const user = last('USER')?.split(':')[0];
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user);
    expect(last('WORKDIR')).toBe('/app');
    expect(
      runtime.some((instruction) => instruction.keyword === 'ENV' && /NODE_ENV=production/u.test(instruction.args)),
    ).toBe(true);
    expect(last('EXPOSE')?.split(/\s+/u)).toContain(String(containerProbes(workloads()[0].container).containerPort));
  });
});
