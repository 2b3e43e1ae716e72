/**
 * The Node versions the start-up scenarios spawn servers on: this process's (Node 20 here, the
 * lowest the package supports) and Node 24, the production image's, fetched from the npm registry
 * with `npx -y node@24` as CI does for its Node 24 test run. The generators stay on this one.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface NodeVersion {
  /** `node20`, `node24`. */
  readonly name: string;
  readonly version: string;
  readonly path: string;
}

const IMAGE_MAJOR = 24;

let found: { readonly versions: readonly NodeVersion[]; readonly missing?: string } | undefined;

const major = (version: string): number => Number(version.replace(/^v/u, '').split('.')[0]);

/** This Node, then Node 24 unless it is this one or cannot be had (then `missing` says why). */
export function nodeVersions(): { readonly versions: readonly NodeVersion[]; readonly missing?: string } {
  if (found !== undefined) return found;
  const own: NodeVersion = { name: `node${major(process.version)}`, version: process.version, path: process.execPath };
  if (major(process.version) === IMAGE_MAJOR) return (found = { versions: [own] });
  try {
    const [path = '', version = ''] = execFileSync(
      'npx',
      ['-y', `node@${IMAGE_MAJOR}`, '-p', 'process.execPath + "\\n" + process.version'],
      { encoding: 'utf8', timeout: 300_000, stdio: ['ignore', 'pipe', 'pipe'] },
    )
      .trim()
      .split('\n');
    if (!existsSync(path) || major(version) !== IMAGE_MAJOR) throw new Error(`npx gave ${path} ${version}`);
    found = { versions: [own, { name: `node${IMAGE_MAJOR}`, version, path }] };
  } catch (error) {
    found = {
      versions: [own],
      missing: `node@${IMAGE_MAJOR} not available (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`,
    };
  }
  return found;
}
