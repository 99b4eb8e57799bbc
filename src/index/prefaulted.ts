/**
 * A zeroed Uint32Array whose memory pages are already mapped. A large typed array's pages are mapped lazily: the
 * first read of a page maps the shared zero page and the first write then faults again to copy it. A rehash reads
 * each new slot before writing it, so it would pay two page faults per page; writing zeros first pays one, in a
 * sequential pass (about twice as fast overall, measured on Linux).
 */
export function prefaulted(words: number): Uint32Array {
  return new Uint32Array(words).fill(0);
}
