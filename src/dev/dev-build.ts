import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, sep } from 'node:path';
import { type Options, transformFile } from '@swc/core';
import { isBuildSource } from './build-freshness.js';

/**
 * As `jest.config.js` compiles for the tests (the same `swc.options.json`), and as tsc does for the
 * build where it matters to Nest: legacy decorators with their design-time metadata (what
 * constructor injection reads), class fields assigned rather than defined. No type check: the
 * editor or `npm run typecheck` does that.
 */
const SWC_OPTIONS: Options = {
  swcrc: false,
  configFile: false,
  ...(JSON.parse(readFileSync(new URL('./swc.options.json', import.meta.url), 'utf8')) as Options),
};

/** Beside the compiled code, as beside the real `dist/`: what it reads relative to itself. */
const LINKED = ['public', 'docs', 'node_modules'];

/** A `src/` file (path relative to `src/`) that compiles to a module of the server. */
export function isCompiledSource(pathInSrc: string): boolean {
  return pathInSrc.endsWith('.ts') && !pathInSrc.endsWith('.d.ts') && isBuildSource(pathInSrc);
}

/**
 * `npm run dev`'s build: each source compiled on its own by SWC (about 1 ms a file). It goes to a
 * root of its own outside the project, `dist/` one level down beside links to `public/`, `docs/`,
 * `node_modules/` and a copy of `package.json`, because the compiled code finds those relative to
 * itself as it does in the real build (`page-assets.ts`, `openapi.document.ts`, `"type": "module"`).
 * The project's `dist/` stays the real build's: `npm start`, the e2e tests and the image run it.
 */
export class DevBuild {
  /** The build's own root, one per project folder. */
  readonly root: string;
  readonly entry: string;
  /** Sources that do not compile now, with SWC's message: the server is not restarted while any do. */
  readonly failing = new Map<string, string>();
  private readonly outDir: string;
  private readonly srcDir: string;

  constructor(private readonly projectRoot: string) {
    const id = createHash('sha256').update(projectRoot).digest('hex').slice(0, 12);
    this.root = join(tmpdir(), `agent-gateway-dev-${id}`);
    this.outDir = join(this.root, 'dist');
    this.entry = join(this.outDir, 'main.js');
    this.srcDir = join(projectRoot, 'src');
  }

  /** From scratch: links, `package.json`, and every source compiled (a file deleted meanwhile leaves nothing behind). */
  async compileAll(): Promise<number> {
    await rm(this.outDir, { recursive: true, force: true });
    await mkdir(this.outDir, { recursive: true });
    await copyFile(join(this.projectRoot, 'package.json'), join(this.root, 'package.json'));
    for (const name of LINKED) {
      const link = join(this.root, name);
      await rm(link, { force: true });
      // A junction on Windows needs no privilege; elsewhere the type is ignored.
      await symlink(join(this.projectRoot, name), link, 'junction');
    }
    const sources = (await readdir(this.srcDir, { recursive: true })).filter(isCompiledSource);
    this.failing.clear();
    await this.compile(sources);
    return sources.length;
  }

  /** Compiles these sources (paths relative to `src/`), or removes the output of those now gone. */
  async compile(pathsInSrc: readonly string[]): Promise<void> {
    await Promise.all(
      pathsInSrc.map(async (path) => {
        const source = join(this.srcDir, path);
        const target = join(this.outDir, path.replace(/\.ts$/u, '.js'));
        if (!existsSync(source)) {
          await rm(target, { force: true });
          this.failing.delete(path);
          return;
        }
        try {
          const { code } = await transformFile(source, { ...SWC_OPTIONS, filename: source });
          await mkdir(dirname(target), { recursive: true });
          await writeFile(target, code);
          this.failing.delete(path);
        } catch (error) {
          this.failing.set(path, error instanceof Error ? error.message : String(error));
        }
      }),
    );
  }

  /** `src/…` as a developer reads it, for messages. */
  static display(pathInSrc: string): string {
    return `src/${pathInSrc.split(sep).join('/')}`;
  }
}
