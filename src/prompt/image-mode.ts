import type { ImageFormat } from './image-probe.js';

/**
 * Whether Pillow decodes an image to RGB, read from the header only (spec/vllm-mm-hash.md §4, "PIL modes by format").
 * vLLM ≥ 0.27 adds an `io_config` entry to the identifier exactly when the decoded mode differs from the target mode
 * (vllm/multimodal/media/image.py on main, `_convert_image_mode`). Only the RGB target is modelled: other targets
 * would need Pillow's exact mode names for every format (GIF's P vs L depends on the palette).
 */
export function decodesAsRgb(format: ImageFormat, bytes: Uint8Array): boolean {
  switch (format) {
    case 'png':
      // IHDR colour type (byte 25): 2 = truecolour → RGB (8 or 16 bit; a tRNS chunk keeps it RGB); others are
      // L / 1 / I;16 (0), P (3), LA (4), RGBA (6).
      return bytes[25] === 2;
    case 'jpeg':
      return jpegComponents(bytes) === 3;
    case 'webp':
      return !webpHasAlpha(bytes);
    case 'gif':
      return false; // P or L: always converted
  }
}

/** Component count of the first SOFn segment (1 → L, 3 → RGB, 4 → CMYK); the probe already found that segment. */
function jpegComponents(b: Uint8Array): number {
  let p = 2;
  while (p < b.length) {
    while (p < b.length && b[p] !== 0xff) p++;
    while (p < b.length && b[p] === 0xff) p++;
    if (p >= b.length) break;
    const marker = b[p++];
    if ((marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) continue;
    if (p + 2 > b.length) break;
    const len = (b[p] << 8) | b[p + 1];
    const sof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (sof) return b[p + 7] ?? 0;
    p += len;
  }
  return 0;
}

/**
 * libwebp's `WebPGetFeatures().has_alpha`, which Pillow uses to pick RGB or RGBA: the VP8X ALPHA flag (0x10 of the
 * flags byte), the VP8L alpha-is-used bit (bit 28 after the signature), never for a plain lossy `VP8 ` chunk.
 */
function webpHasAlpha(b: Uint8Array): boolean {
  const chunk = String.fromCharCode(b[12], b[13], b[14], b[15]);
  if (chunk === 'VP8X') return (b[20] & 0x10) !== 0;
  if (chunk === 'VP8L') return ((b[24] >> 4) & 1) === 1;
  return false;
}
