import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import ts from 'typescript';
import { ServerProcess } from '../support/server-process.js';
import { signToken, TEST_JWT_SECRET } from '../support/tokens.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');

/** What `npm pack --json` reports about the tarball. */
interface Packed {
  readonly filename: string;
  readonly size: number;
  readonly entryCount: number;
  readonly files: ReadonlyArray<{ readonly path: string }>;
}

interface Finished {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs a command to its end, failed or not. The child gets neither Jest's NODE_OPTIONS nor the
 * `npm_*` variables that `npm test` exports: npm reads those as configuration, and the nested
 * install must behave as it does for someone typing it.
 */
function run(
  command: string,
  args: readonly string[],
  { cwd, env = {}, timeoutMs }: { cwd: string; env?: Record<string, string>; timeoutMs: number },
): Promise<Finished> {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => name !== 'NODE_OPTIONS' && !name.toLowerCase().startsWith('npm_')),
  );
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd, env: { ...inherited, ...env }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function succeeded(result: Finished): Finished {
  if (result.code !== 0) throw new Error(`exit ${result.code}\n${result.stdout}\n${result.stderr}`);
  return result;
}

/** The fenced block of `language` in `markdown` that contains `marker`. */
function codeBlock(markdown: string, language: string, marker: string): string {
  const blocks = [...markdown.matchAll(new RegExp('```' + language + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]);
  const found = blocks.filter((block) => block.includes(marker));
  if (found.length !== 1) throw new Error(`expected one \`\`\`${language} block with ${marker}, found ${found.length}`);
  return found[0];
}

/** Every module a compiled file imports: static, re-exported or dynamic. */
function specifiers(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((file) => file.fileName);
}

/** The file paths a package.json `exports` value maps to. */
function exportTargets(value: unknown): string[] {
  if (typeof value === 'string') return [value.replace(/^\.\//, '')];
  if (typeof value !== 'object' || value === null) return [];
  return Object.values(value).flatMap(exportTargets);
}

/** An application of the SDK: what it offers, used as documented. */
const APPLICATION = `
import { GatewayClient, GatewayError, type RunFrame, type RunResult } from 'agent-gateway/client';
import { CloseCode, ERROR_CODES, PROTOCOL_VERSION, type ErrorCode, type ServerEvents } from 'agent-gateway/protocol';

export async function ask(url: string, token: string, message: string): Promise<string> {
  const client = new GatewayClient({ url, token: () => token, reconnect: { maxAttempts: 3 } });
  const run = client.run(message);
  let text = '';
  for await (const frame of run) if (frame.event === 'agent_message_delta') text += frame.data.text;
  const result: RunResult = await run.result;
  client.close();
  if (result.status === 'completed') return result.message.content;
  if (result.status === 'cancelled') return text;
  throw new GatewayError(result.error);
}

export const describeFrame = (frame: RunFrame): string =>
  frame.event === 'tool_executing' ? frame.data.tool : frame.event === 'agent_error' ? frame.data.code : frame.event;
export const version: 1 = PROTOCOL_VERSION;
export const restart: 1012 = CloseCode.SERVICE_RESTART;
export const codes: readonly ErrorCode[] = ERROR_CODES;
export type Established = ServerEvents['connection_established'];
`;

/** Mistakes, each marked with the error tsc must report on its line. */
const MISUSE = `
import { GatewayClient, type RunFrame } from 'agent-gateway/client';
import { CloseCode, type ErrorCode } from 'agent-gateway/protocol';

const client = new GatewayClient({ url: 'ws://localhost:3000/ws', token: 'x' });
client.run(42); // TS2345
export const text = (frame: RunFrame): string => frame.data.text; // TS2339
export const code: ErrorCode = 'NOT_A_CODE'; // TS2322
export const close: 1000 = CloseCode.SERVICE_RESTART; // TS2322
export const options = new GatewayClient({ url: 'ws://localhost:3000/ws' }); // TS2345
`;

const COMPILER_OPTIONS = { strict: true, noEmit: true, skipLibCheck: false, target: 'es2022', types: [] };
/** A Node application (no DOM types) and a bundled browser application. */
const TSCONFIGS = {
  nodenext: { ...COMPILER_OPTIONS, module: 'nodenext', moduleResolution: 'nodenext', lib: ['es2022'] },
  bundler: { ...COMPILER_OPTIONS, module: 'esnext', moduleResolution: 'bundler', lib: ['es2022', 'dom'] },
};

/**
 * The SDK as a front-end developer gets it: `npm pack`, the tarball installed into a fresh project,
 * then imported, run and type-checked there through the package's `exports` alone.
 */
describe('the SDK as a package (npm pack, installed into a fresh project)', () => {
  let work: string;
  let app: string;
  let packed: Packed;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'agent-gateway-package-'));
    const pack = succeeded(
      await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: ROOT, timeoutMs: 60_000 }),
    );
    [packed] = JSON.parse(pack.stdout) as Packed[];
    app = join(work, 'app');
    await mkdir(app);
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'sdk-user', private: true, type: 'module' }));
    const { version: wsVersion } = JSON.parse(await readFile(join(ROOT, 'node_modules/ws/package.json'), 'utf8')) as {
      version: string;
    };
    // The tarball is the whole gateway, so npm installs the server's dependencies too (about 190
    // packages; 15-30 s from the cache `npm ci` warmed). They are not skipped: a user gets them, and
    // an install that resolves is part of what is tested. --ignore-scripts skips better-sqlite3's
    // native build, which only the server needs (and which would download or compile). `ws` is
    // installed by name, as the Node example asks its users to.
    succeeded(
      await run(
        'npm',
        [
          'install',
          join(work, packed.filename),
          `ws@${wsVersion}`,
          '--ignore-scripts',
          '--no-audit',
          '--no-fund',
          '--prefer-offline',
          '--loglevel=error',
        ],
        { cwd: app, timeoutMs: 180_000 },
      ),
    );
  }, 240_000);

  afterAll(async () => {
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  it('packs the built SDK and what the server reads at run time, and no tests, benchmarks, sources or source maps', async () => {
    const paths = packed.files.map((file) => file.path);
    const manifest = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { exports: unknown };
    const targets = exportTargets(manifest.exports);
    expect(targets).toEqual(expect.arrayContaining(['dist/client/index.js', 'dist/protocol/index.d.ts']));
    expect(paths).toEqual(
      expect.arrayContaining([
        ...targets,
        'dist/main.js',
        'dist/bundle/main.mjs',
        'public/index.html',
        'docs/openapi.json',
        'docs/client-sdk.md',
        'README.md',
      ]),
    );
    expect(paths.filter((path) => /^(test|bench|src)\/|\.spec\.|\.map$|tsbuildinfo/.test(path))).toEqual([]);
  });

  it('imports agent-gateway/client and agent-gateway/protocol in Node, whose modules import only each other', async () => {
    const script = `
      import { AgentRun, GatewayClient, GatewayError } from 'agent-gateway/client';
      import { CloseCode, ERROR_CODES, PROTOCOL_VERSION } from 'agent-gateway/protocol';
      console.log(JSON.stringify({
        classes: [AgentRun, GatewayClient, GatewayError].map((value) => typeof value),
        version: PROTOCOL_VERSION,
        restart: CloseCode.SERVICE_RESTART,
        codes: ERROR_CODES.length,
      }));`;
    const { stdout } = succeeded(
      await run(process.execPath, ['--input-type=module', '-e', script], { cwd: app, timeoutMs: 30_000 }),
    );
    expect(JSON.parse(stdout)).toEqual({
      classes: ['function', 'function', 'function'],
      version: 1,
      restart: 1012,
      codes: expect.any(Number),
    });

    // What a browser loads from /sdk/ or a bundler follows: nothing outside these two folders.
    const dist = join(app, 'node_modules/agent-gateway/dist');
    const imported: string[] = [];
    for (const folder of ['client', 'protocol']) {
      for (const name of (await readdir(join(dist, folder))).filter((file) => file.endsWith('.js'))) {
        const from = pathToFileURL(join(dist, folder, name));
        for (const specifier of specifiers(await readFile(from, 'utf8'))) {
          imported.push(
            specifier.startsWith('.') ? relative(dist, fileURLToPath(new URL(specifier, from))) : `bare ${specifier}`,
          );
        }
      }
    }
    expect(imported.length).toBeGreaterThan(0);
    expect(imported.filter((path) => !/^(client|protocol)\/[\w.-]+\.js$/.test(path))).toEqual([]);
  });

  it("runs the README's Node example against a running gateway: it connects, sends, and streams the reply to its end", async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const example = codeBlock(readme, 'js', 'process.stdout.write');
    expect(codeBlock(await readFile(join(ROOT, 'docs/client-sdk.md'), 'utf8'), 'js', 'process.stdout.write')).toBe(
      example,
    );
    expect(example).toContain("from 'agent-gateway/client'");
    const server = await ServerProcess.start({ JWT_SECRET: TEST_JWT_SECRET });
    try {
      await server.ready();
      await writeFile(
        join(app, 'example.js'),
        example.replace('ws://localhost:3000/ws', `ws://127.0.0.1:${server.port}/ws`),
      );
      // It exits by itself: the example closes its client.
      const { stdout } = succeeded(
        await run(process.execPath, ['example.js'], {
          cwd: app,
          env: { TOKEN: signToken({ sub: 'pat' }) },
          timeoutMs: 30_000,
        }),
      );
      const streamed = stdout.slice(0, stdout.indexOf('\n'));
      expect(streamed).toContain('84');
      expect(stdout).toContain("status: 'completed'");
      expect(stdout).toContain(`content: ${inspect(streamed)}`);
    } finally {
      await server.stop();
    }
  }, 60_000);

  it('type-checks an application against the packed declarations, with nodenext and with bundler resolution', async () => {
    const docsExample = codeBlock(await readFile(join(ROOT, 'docs/client-sdk.md'), 'utf8'), 'ts', 'agent-gateway');
    await writeFile(join(app, 'application.ts'), APPLICATION);
    await writeFile(join(app, 'docs-example.ts'), docsExample);
    for (const [name, compilerOptions] of Object.entries(TSCONFIGS)) {
      const project = `tsconfig.${name}.json`;
      await writeFile(
        join(app, project),
        JSON.stringify({ compilerOptions, files: ['application.ts', 'docs-example.ts'] }),
      );
      const { code, stdout } = await run(process.execPath, [TSC, '-p', project], { cwd: app, timeoutMs: 60_000 });
      expect({ project, code, stdout }).toEqual({ project, code: 0, stdout: '' });
    }
  }, 120_000);

  it('refuses an application that misuses them, each mistake on its line: the types are real, not any', async () => {
    await writeFile(join(app, 'misuse.ts'), MISUSE);
    const expected = MISUSE.split('\n')
      .map((line, index) => ({ line: index + 1, code: /\/\/ (TS\d+)$/.exec(line)?.[1] }))
      .filter((mark) => mark.code !== undefined)
      .map(({ line, code }) => `${line} ${code}`);
    expect(expected).toHaveLength(5);
    for (const [name, compilerOptions] of Object.entries(TSCONFIGS)) {
      const project = `tsconfig.misuse.${name}.json`;
      await writeFile(join(app, project), JSON.stringify({ compilerOptions, files: ['misuse.ts'] }));
      const { code, stdout } = await run(process.execPath, [TSC, '-p', project], { cwd: app, timeoutMs: 60_000 });
      const reported = [...stdout.matchAll(/^misuse\.ts\((\d+),\d+\): error (TS\d+)/gm)].map((m) => `${m[1]} ${m[2]}`);
      expect({ project, code, reported }).toEqual({ project, code: 2, reported: expected });
    }
  }, 120_000);
});
