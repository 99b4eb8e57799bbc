/**
 * Python's str.strip / lstrip / rstrip (what chat templates call through Jinja2, and what transformers'
 * continue_final_message uses). JavaScript's trim() differs: it takes no characters argument, and its whitespace set
 * includes U+FEFF but not U+001C–U+001F or U+0085, which Python's str.isspace() counts.
 */

/** Python's str.isspace() characters (\x1c–\x1f are among them: file, group, record and unit separators). */
// eslint-disable-next-line no-control-regex
const PY_SPACE = /[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;

/** `s.strip(chars)` (both sides), `lstrip` (left only) or `rstrip` (right only); `chars` null = whitespace. */
export function pyStrip(s: string, chars: string | null, side: 'both' | 'left' | 'right' = 'both'): string {
  // Python strips code points: iterate by code point so an astral character in `chars` matches whole.
  const set = chars === null ? null : new Set(Array.from(chars));
  const strippable = (c: string) => (set === null ? PY_SPACE.test(c) : set.has(c));
  const points = Array.from(s);
  let start = 0;
  let end = points.length;
  if (side !== 'right') while (start < end && strippable(points[start])) start++;
  if (side !== 'left') while (end > start && strippable(points[end - 1])) end--;
  return start === 0 && end === points.length ? s : points.slice(start, end).join('');
}
