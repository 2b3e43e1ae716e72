/**
 * `npm run build`'s second step, after tsc: the server as production runs it, bundled from tsc's
 * `dist/main.js` (tsc emits the decorator metadata Nest injects by; esbuild cannot) into
 * `dist/bundle/main.mjs` and the chunks it loads. The Dockerfile's `CMD`, `npm start`, the e2e tests
 * and the benchmarks run it; `dist/` itself stays for the SDK, the testing export and the commands.
 *
 * Why a bundle: unbundled, a start reads about 1 600 modules and 140 package.json files before it
 * is ready, and resolving, reading and compiling them was most of its start-up (docs/benchmarks.md,
 * "Cold start"). Split into chunks: what is imported only when first needed (Kysely and the
 * database drivers, the `openai` SDK, ioredis, the migrations) stays out of the files parsed before
 * the port opens. A CommonJS package imported on demand that way comes with `default` (its
 * `module.exports`) and no named exports, so such imports read `(await import('x')).default`.
 *
 * `dist/bundle/` is one level below `dist/`, like the files it is built from: `new URL('../…',
 * import.meta.url)` finds `public/`, `docs/openapi.json` and the SDK in `dist/client/` from either.
 */
import { readdir, rm } from 'node:fs/promises';
import { createRequire, isBuiltin } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

const DIST = fileURLToPath(new URL('../', import.meta.url));
const OUT_DIR = join(DIST, 'bundle');

/**
 * Left to Node at run time, from `node_modules`:
 * - native addons, which `bindings` finds beside their package;
 * - `ws`, which `@nestjs/platform-ws` loads through `createRequire` (out of a bundler's sight):
 *   bundled as well, the server would hold two copies;
 * - what Nest, terminus and pg look for and do without (`require` in a `try`): optional packages
 *   this service does not install, and `@nestjs/swagger` (a devDependency: terminus documents a
 *   route with it when it is there; ours asks it not to, and the bundle must not contain it).
 */
const EXTERNAL = [
  'better-sqlite3',
  'better-sqlite3-13',
  'ws',
  '@nestjs/microservices',
  '@nestjs/microservices/microservices-module',
  '@nestjs/platform-socket.io',
  '@fastify/static',
  'class-transformer',
  'class-validator',
  'pg-native',
  '@nestjs/swagger',
];

/**
 * rxjs's `exports` give Node its CommonJS build, which a bundler must keep whole (about 280 KB,
 * evaluated at start). Its ES2015 build is in the same package and declares no side effects, so
 * only the operators in use are kept (about 40 KB). One build for every importer: one `Observable`.
 */
const rxjsEsm: Plugin = {
  name: 'rxjs-es2015',
  setup(builder) {
    const root = dirname(createRequire(import.meta.url).resolve('rxjs/package.json'));
    // No `u` flag: esbuild runs the filter as a Go regular expression.
    builder.onResolve({ filter: /^rxjs(\/operators)?$/ }, ({ path }) => ({
      path: join(root, 'dist', 'esm', path === 'rxjs' ? '' : 'operators', 'index.js'),
    }));
  },
};

/**
 * Node's built-ins through `require`, also where an ES module imports them. Importing one makes Node
 * build an ES module facade that reads every export once, and from Node 22 reading some of them
 * loads more: `node:http`'s `WebSocket` loads undici, `node:util`'s `TextDecoder` more (about 60 ms of
 * a Node 24 start here). `require` hands over the module object, whose getters run only when used.
 */
const builtinsViaRequire: Plugin = {
  name: 'builtins-via-require',
  setup(builder) {
    builder.onResolve({ filter: /^(node:)?[a-z_]+(\/[a-z_]+)?$/ }, ({ path, kind }) =>
      kind === 'import-statement' && isBuiltin(path)
        ? { path: path.startsWith('node:') ? path : `node:${path}`, namespace: 'node-builtin' }
        : undefined,
    );
    builder.onLoad({ filter: /.*/, namespace: 'node-builtin' }, ({ path }) => ({
      contents: `module.exports = require(${JSON.stringify(path)});`,
      loader: 'js',
    }));
  },
};

/**
 * Packages left to Node although nothing forces it, because Node loads them faster than the bundle
 * would, each from the very file its importer would have found (two versions of `mime-db` are
 * installed, for express and for multer): `mime-db`, a 200 KB JSON file that Node parses as JSON
 * where a bundle holds it as a JavaScript object literal; `iconv-lite`, whose 500 KB of encoding
 * tables a bundle parses at start, and Node reads only when a request body is not UTF-8. About
 * 30 ms of a start (docs/benchmarks.md, "Cold start").
 */
const LOADED_BY_NODE = /^(mime-db|iconv-lite)$/;
const loadedByNode: Plugin = {
  name: 'loaded-by-node',
  setup(builder) {
    builder.onResolve({ filter: LOADED_BY_NODE }, async ({ path, resolveDir, kind, importer, pluginData }) => {
      if (pluginData === 'loaded-by-node') return undefined;
      const resolved = await builder.resolve(path, { resolveDir, kind, importer, pluginData: 'loaded-by-node' });
      if (resolved.errors.length > 0) return { errors: resolved.errors };
      return { path: `./${relative(OUT_DIR, resolved.path).split(sep).join('/')}`, external: true };
    });
  },
};

const { metafile } = await build({
  // The entry imports reflect-metadata before the application: chunks run before the module that
  // imports them, so decorators in a chunk shared with main.js would otherwise run without it.
  stdin: {
    contents: "import 'reflect-metadata';\nawait import('./main.js');\n",
    resolveDir: DIST,
    sourcefile: 'bundle-entry.js',
    loader: 'js',
  },
  outdir: OUT_DIR,
  entryNames: 'main',
  chunkNames: '[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: EXTERNAL,
  plugins: [rxjsEsm, builtinsViaRequire, loadedByNode],
  // CommonJS packages inside an ES module still `require` Node's built-ins and the externals.
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module';\nconst require = __createRequire(import.meta.url);",
  },
  // Fewer bytes to parse at every start. Names kept: Nest logs and reports by class name, and
  // esbuild renames every class that refers to itself (`_InstanceLoader`); the price is a `__name`
  // call per function, about 40 ms of a start on Node 20 (docs/benchmarks.md).
  minifyWhitespace: true,
  minifySyntax: true,
  keepNames: true,
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning',
});

// Files are replaced in place and the old ones removed only now, so that `main.mjs` never goes
// missing for a server or test starting meanwhile. Chunk names are content hashes: an unchanged
// chunk keeps its file.
const written = new Set(Object.keys(metafile.outputs).map((path) => resolve(path)));
for (const name of await readdir(OUT_DIR)) {
  if (!written.has(join(OUT_DIR, name))) await rm(join(OUT_DIR, name), { force: true });
}
