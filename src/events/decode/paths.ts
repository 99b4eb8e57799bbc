/**
 * Field paths for DecodeIssue.field, e.g. `events[3].extra_keys[0][2]`. Built only when something is wrong, so
 * the hot path passes the pieces (event index, field name, element indices) instead of strings.
 */
export function fieldPath(ev: number, name: string, ...indices: number[]): string {
  let path = `events[${ev}].${name}`;
  for (const i of indices) path += `[${i}]`;
  return path;
}
