import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/** One file the page needs, held in memory: a request names a key, never a path. */
export interface PageAsset {
  readonly body: Buffer;
  readonly contentType: string;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/**
 * The chat page (the files at the top of `public/`, and its modules in `public/page/`, served as
 * `/page/…`) and the client SDK as browsers load it: the compiled `client/` and `protocol/` modules
 * beside this one (`dist/`), served as `/sdk/client/…` and `/sdk/protocol/…` so their relative
 * imports resolve. Loaded once at start-up. Run from the TypeScript sources (tests in Jest), there
 * is no compiled SDK and only the page itself is there.
 */
export async function loadPageAssets(): Promise<ReadonlyMap<string, PageAsset>> {
  const assets = new Map<string, PageAsset>();
  // The files of a folder are read side by side: this runs before the port opens, and one file
  // after the other took about 10 ms there.
  const add = async (directory: URL, prefix: string, names: readonly string[]): Promise<void> => {
    await Promise.all(
      names.map(async (name) => {
        const contentType = CONTENT_TYPES[name.slice(name.lastIndexOf('.'))];
        if (contentType === undefined) return;
        assets.set(`${prefix}${name}`, { body: await readFile(new URL(name, directory)), contentType });
      }),
    );
  };
  const publicDir = new URL('../../public/', import.meta.url);
  await add(publicDir, '/', await listFiles(publicDir));
  const pageDir = new URL('page/', publicDir);
  await add(
    pageDir,
    '/page/',
    (await listFiles(pageDir)).filter((name) => name.endsWith('.js')),
  );
  for (const part of ['client', 'protocol']) {
    const directory = new URL(`../${part}/`, import.meta.url);
    const scripts = (await listFiles(directory)).filter((name) => name.endsWith('.js'));
    await add(directory, `/sdk/${part}/`, scripts);
  }
  return assets;
}

async function listFiles(directory: URL): Promise<string[]> {
  try {
    const entries = await readdir(fileURLToPath(directory), { withFileTypes: true });
    return entries.filter((entry) => entry.isFile()).map((entry) => entry.name);
  } catch {
    return [];
  }
}
