// Reads a Prometheus textfile with an independent parser (parse-prometheus-text-format from npm).
import parsePrometheusTextFormat from 'parse-prometheus-text-format';

/** The value of the sample of `name` whose labels include `labels` (undefined when none). */
export function valueOf(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const family = parsePrometheusTextFormat(text).find((f) => f.name === name);
  const sample = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return sample === undefined ? undefined : Number(sample.value);
}
