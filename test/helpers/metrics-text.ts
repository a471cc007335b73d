// Reads Prometheus's text exposition format (what prom-client writes) in tests: every sample, and the
// `# TYPE` of every metric. A line that is neither is a failure: the text must parse.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricsText {
  types: Map<string, string>;
  samples: Sample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseMetrics(text: string): MetricsText {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("# HELP ")) continue;
    const type = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type !== null) {
      types.set(type[1] as string, type[2] as string);
      continue;
    }
    const sample = SAMPLE.exec(line);
    if (sample === null) throw new Error(`not a line of the exposition format: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const [, name, value] of (sample[2] ?? "").matchAll(LABEL)) labels[name as string] = value as string;
    const value = numberOf(sample[3] as string);
    if (value === null) throw new Error(`not a number: ${JSON.stringify(line)}`);
    samples.push({ name: sample[1] as string, labels, value });
  }
  return { types, samples };
}

/** The value of the sample with this name and these labels (among others), 0 when there is none. */
export function sampleValue(metrics: MetricsText, name: string, labels: Record<string, string> = {}): number {
  const found = metrics.samples.find((s) => s.name === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value));
  return found?.value ?? 0;
}

/** Every value a label takes on a metric. */
export function labelValues(metrics: MetricsText, name: string, label: string): Set<string> {
  return new Set(metrics.samples.filter((s) => s.name === name && s.labels[label] !== undefined).map((s) => s.labels[label] as string));
}

/** A sample's value as Prometheus reads it (Go's ParseFloat: `NaN` in any case, `+Inf`, `-Inf`). */
function numberOf(text: string): number | null {
  if (/^nan$/i.test(text)) return Number.NaN;
  if (/^[+-]?inf$/i.test(text)) return text.startsWith("-") ? -Infinity : Infinity;
  const value = Number(text);
  return Number.isNaN(value) ? null : value;
}
