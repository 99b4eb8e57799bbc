import { PromptError } from './errors.js';

/** A rule with its token strings resolved to ids. */
export interface ExpansionIds {
  target: number;
  prefix: number[];
  repeat: number;
  suffix: number[];
  /** "\n", "\n\n", "\n\n\n", "\n\n\n\n" ids when the rule re-merges newlines (Gemma 3). */
  newlines: [number, number, number, number] | null;
}

export interface PlaceholderRange {
  offset: number;
  length: number;
}

/**
 * Replaces the i-th occurrence of the target token by prefix + counts[i] × repeat + suffix and returns the new
 * sequence with each image's placeholder range (PlaceholderRange offset/length as vLLM records it).
 * The template must have emitted exactly one target per image.
 */
export function expandPlaceholders(
  tokens: Uint32Array,
  ids: ExpansionIds,
  counts: readonly number[],
): { tokens: Uint32Array; ranges: PlaceholderRange[] } {
  const positions: number[] = [];
  for (let i = 0; i < tokens.length; i++) if (tokens[i] === ids.target) positions.push(i);
  if (positions.length !== counts.length) {
    throw new PromptError(
      'invalid_argument',
      `the rendered prompt has ${positions.length} image placeholder(s) for ${counts.length} image(s)` +
        ' (the chat template dropped images, or the text contains the placeholder token)',
      'messages',
    );
  }
  const extra = counts.reduce((s, n) => s + ids.prefix.length + n + ids.suffix.length - 1, 0);
  const out = new Uint32Array(tokens.length + extra);
  const ranges: PlaceholderRange[] = [];
  let src = 0;
  let dst = 0;
  for (let k = 0; k < positions.length; k++) {
    const p = positions[k];
    out.set(tokens.subarray(src, p), dst);
    dst += p - src;
    const start = dst;
    for (const t of ids.prefix) out[dst++] = t;
    out.fill(ids.repeat, dst, dst + counts[k]);
    dst += counts[k];
    for (const t of ids.suffix) out[dst++] = t;
    ranges.push({ offset: start, length: dst - start });
    src = p + 1;
  }
  out.set(tokens.subarray(src), dst);
  if (!ids.newlines || ranges.length === 0) return { tokens: out, ranges };
  return mergeNewlines(out, ranges, ids.newlines);
}

/**
 * vLLM's Gemma 3 fix-up: the replacement puts "\n\n" next to template newlines, so adjacent newline tokens are merged
 * the way the tokenizer would have produced them ([\n,\n\n]→\n\n\n, then [\n\n,\n]→\n\n\n, then [\n\n,\n\n]→\n\n\n\n,
 * each pass left to right over the whole prompt). A range keeps its length and starts at the token that now holds its
 * first newline (vLLM maps the start back through the merge).
 */
function mergeNewlines(
  tokens: Uint32Array,
  ranges: PlaceholderRange[],
  [n1, n2, n3, n4]: [number, number, number, number],
): { tokens: Uint32Array; ranges: PlaceholderRange[] } {
  let seq = tokens;
  let starts = ranges.map((r) => r.offset);
  for (const [a, b, merged] of [
    [n1, n2, n3],
    [n2, n1, n3],
    [n2, n2, n4],
  ] as const) {
    const next = new Uint32Array(seq.length);
    const map = new Int32Array(seq.length);
    let j = 0;
    for (let i = 0; i < seq.length; i++) {
      if (seq[i] === a && i + 1 < seq.length && seq[i + 1] === b) {
        map[i] = j;
        map[i + 1] = j;
        next[j++] = merged;
        i++;
      } else {
        map[i] = j;
        next[j++] = seq[i];
      }
    }
    starts = starts.map((s) => map[s]);
    seq = next.subarray(0, j);
  }
  return { tokens: seq.slice(), ranges: ranges.map((r, i) => ({ offset: starts[i], length: r.length })) };
}
