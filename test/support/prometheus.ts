/** One scrape of `/metrics`, parsed: sample values by series, and the HELP and TYPE of each metric. */
export interface Scrape {
  readonly status: number;
  readonly contentType: string | null;
  readonly cacheControl: string | null;
  readonly text: string;
  readonly help: ReadonlyMap<string, string>;
  readonly types: ReadonlyMap<string, string>;
  /** The value of `name` with exactly `labels`, or `undefined` when the series is absent. */
  value(name: string, labels?: Record<string, string>): number | undefined;
  /** Every series of `name`, with its labels. */
  series(name: string): Array<{ labels: Record<string, string>; value: number }>;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/u;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/gu;

function seriesKey(name: string, labels: Record<string, string>): string {
  const parts = Object.entries(labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, value]) => `${key}=${JSON.stringify(value)}`);
  return `${name}{${parts.join(',')}}`;
}

/** Parses the Prometheus text exposition format (what prom-client writes). */
export function parsePrometheus(text: string): Pick<Scrape, 'help' | 'types' | 'value' | 'series'> {
  const help = new Map<string, string>();
  const types = new Map<string, string>();
  const samples = new Map<string, { name: string; labels: Record<string, string>; value: number }>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/u.exec(line);
    if (meta !== null) {
      (meta[1] === 'HELP' ? help : types).set(meta[2] ?? '', meta[3] ?? '');
      continue;
    }
    if (line.startsWith('#')) continue;
    const sample = SAMPLE.exec(line);
    if (sample === null) throw new Error(`not a Prometheus sample line: ${line}`);
    const [, name = '', rawLabels = '', rawValue = ''] = sample;
    const labels: Record<string, string> = {};
    for (const [, key = '', value = ''] of rawLabels.matchAll(LABEL)) labels[key] = JSON.parse(`"${value}"`) as string;
    samples.set(seriesKey(name, labels), { name, labels, value: Number(rawValue) });
  }
  return {
    help,
    types,
    value: (name, labels = {}) => samples.get(seriesKey(name, labels))?.value,
    series: (name) => [...samples.values()].filter((sample) => sample.name === name),
  };
}

/** GETs `/metrics` from `baseUrl` and parses it. */
export async function scrape(baseUrl: string): Promise<Scrape> {
  const response = await fetch(new URL('/metrics', baseUrl));
  const text = await response.text();
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    cacheControl: response.headers.get('cache-control'),
    text,
    ...parsePrometheus(text),
  };
}
