/**
 * Several Prometheus text expositions as one (the serving processes' registries behind the primary's /metrics): each
 * family's `# HELP` and `# TYPE` once, in order of first appearance, followed by the samples of every source. A source
 * with a label gets it on each of its samples (`worker="1"`), so that the same series of two processes stay two
 * series rather than colliding or being summed: a per-process gauge such as the index's entry count is not additive
 * across replicas.
 */
export interface ExpositionSource {
  text: string;
  /** One label added to every sample of this source, or none. */
  label?: { name: string; value: string };
}

interface Family {
  help: string | null;
  type: string | null;
  samples: string[];
}

/** `name{a="b"} 1` → `name{worker="1",a="b"} 1`; `name 1` → `name{worker="1"} 1`. */
function withLabel(sample: string, pair: string): string {
  const brace = sample.indexOf('{');
  const space = sample.indexOf(' ');
  if (brace >= 0 && (space < 0 || brace < space)) {
    const empty = sample[brace + 1] === '}';
    return `${sample.slice(0, brace + 1)}${pair}${empty ? '' : ','}${sample.slice(brace + 1)}`;
  }
  return space < 0 ? sample : `${sample.slice(0, space)}{${pair}}${sample.slice(space)}`;
}

/** Escapes a label value as the text format requires (backslash, double quote, newline). */
function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export function mergeExpositions(sources: readonly ExpositionSource[]): string {
  const families = new Map<string, Family>();
  const familyOf = (name: string): Family => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { help: null, type: null, samples: [] }));
    return f;
  };
  for (const source of sources) {
    const pair = source.label ? `${source.label.name}="${escapeLabelValue(source.label.value)}"` : null;
    // prom-client writes HELP and TYPE before a family's samples; a sample belongs to the last family announced.
    let current: Family | null = null;
    for (const line of source.text.split('\n')) {
      if (line.length === 0) continue;
      if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) {
        const rest = line.slice(7);
        const end = rest.indexOf(' ');
        const name = end < 0 ? rest : rest.slice(0, end);
        current = familyOf(name);
        if (line[2] === 'H') current.help ??= line;
        else current.type ??= line;
        continue;
      }
      if (line.startsWith('#')) continue;
      const end = line.search(/[{ ]/);
      const target = current ?? familyOf(end < 0 ? line : line.slice(0, end));
      target.samples.push(pair ? withLabel(line, pair) : line);
    }
  }
  const out: string[] = [];
  for (const f of families.values()) {
    if (f.help) out.push(f.help);
    if (f.type) out.push(f.type);
    out.push(...f.samples);
  }
  return out.length > 0 ? `${out.join('\n')}\n` : '';
}
