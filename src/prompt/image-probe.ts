import { invalid, PromptError } from './errors.js';

/**
 * Image dimensions from the encoded header only (spec/multimodal.md §3): PNG IHDR, JPEG SOFn, WebP VP8/VP8L/VP8X,
 * GIF logical screen. Pixels are never decoded. EXIF orientation is not applied (vLLM does not transpose either).
 */

export type ImageFormat = 'png' | 'jpeg' | 'webp' | 'gif';

export interface ImageSize {
  format: ImageFormat;
  width: number;
  height: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function ascii(b: Uint8Array, at: number, len: number): string {
  return String.fromCharCode(...b.subarray(at, at + len));
}

function truncated(field: string | undefined, format: string): never {
  throw invalid(field, `truncated ${format} image: the header ends before the image size`);
}

/** Width and height of an encoded image; throws `invalid_argument` for unknown or truncated formats. */
export function probeImageSize(bytes: Uint8Array, field?: string): ImageSize {
  const b = bytes;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length >= 8 && PNG_SIGNATURE.every((v, i) => b[i] === v)) {
    if (b.length < 24) truncated(field, 'PNG');
    if (ascii(b, 12, 4) !== 'IHDR') throw invalid(field, 'PNG without an IHDR chunk first');
    return { format: 'png', width: dv.getUint32(16), height: dv.getUint32(20) };
  }
  if (b.length >= 6 && (ascii(b, 0, 6) === 'GIF87a' || ascii(b, 0, 6) === 'GIF89a')) {
    if (b.length < 10) truncated(field, 'GIF');
    return { format: 'gif', width: dv.getUint16(6, true), height: dv.getUint16(8, true) };
  }
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return probeJpeg(b, dv, field);
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 4) === 'WEBP') return probeWebp(b, dv, field);
  throw invalid(field, 'unknown image format (supported: PNG, JPEG, WebP, GIF)');
}

function isSof(marker: number): boolean {
  // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

function probeJpeg(b: Uint8Array, dv: DataView, field?: string): ImageSize {
  let p = 2;
  for (;;) {
    while (p < b.length && b[p] !== 0xff) p++; // tolerate garbage between segments, as decoders do
    while (p < b.length && b[p] === 0xff) p++; // fill bytes
    if (p >= b.length) truncated(field, 'JPEG');
    const marker = b[p++];
    if (marker === 0xd9 || marker === 0xda) throw invalid(field, 'JPEG without a frame header (SOFn) before the scan');
    if ((marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) continue; // standalone markers
    if (p + 2 > b.length) truncated(field, 'JPEG');
    const len = dv.getUint16(p);
    if (len < 2) throw invalid(field, 'corrupt JPEG segment length');
    if (isSof(marker)) {
      if (p + 7 > b.length) truncated(field, 'JPEG');
      return { format: 'jpeg', height: dv.getUint16(p + 3), width: dv.getUint16(p + 5) };
    }
    p += len;
  }
}

function probeWebp(b: Uint8Array, dv: DataView, field?: string): ImageSize {
  if (b.length < 16) truncated(field, 'WebP');
  const chunk = ascii(b, 12, 4);
  if (chunk === 'VP8 ') {
    if (b.length < 30) truncated(field, 'WebP');
    if (b[23] !== 0x9d || b[24] !== 0x01 || b[25] !== 0x2a) throw invalid(field, 'corrupt WebP VP8 start code');
    return { format: 'webp', width: dv.getUint16(26, true) & 0x3fff, height: dv.getUint16(28, true) & 0x3fff };
  }
  if (chunk === 'VP8L') {
    if (b.length < 25) truncated(field, 'WebP');
    if (b[20] !== 0x2f) throw invalid(field, 'corrupt WebP VP8L signature');
    const bits = dv.getUint32(21, true);
    return { format: 'webp', width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (chunk === 'VP8X') {
    if (b.length < 30) truncated(field, 'WebP');
    const w = b[24] | (b[25] << 8) | (b[26] << 16);
    const h = b[27] | (b[28] << 8) | (b[29] << 16);
    return { format: 'webp', width: w + 1, height: h + 1 };
  }
  throw invalid(field, `unknown WebP chunk "${chunk}"`);
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Decodes a `data:<type>;base64,<data>` URL strictly (as vLLM's validating base64 decoder does). Data over `maxBytes`
 * once decoded is refused from its base64 length alone, before it is validated or decoded.
 */
export function decodeDataUrl(
  url: string,
  field?: string,
  maxBytes = Infinity,
): { mediaType: string; bytes: Uint8Array } {
  const comma = url.indexOf(',');
  if (!url.startsWith('data:') || comma < 0) throw invalid(field, 'malformed data URL');
  const header = url.slice(5, comma);
  const params = header.split(';');
  if (params[params.length - 1] !== 'base64') throw invalid(field, 'only base64 data URLs are supported');
  const data = url.slice(comma + 1);
  if (data.length === 0) throw invalid(field, 'empty data URL');
  const decodedBytes = Math.floor(data.length / 4) * 3 - (data.endsWith('==') ? 2 : data.endsWith('=') ? 1 : 0);
  if (decodedBytes > maxBytes) {
    throw new PromptError(
      'resource_exhausted',
      `image data is ${decodedBytes} bytes, more than the limit of ${maxBytes}`,
      field,
    );
  }
  if (data.length % 4 !== 0 || !BASE64.test(data)) throw invalid(field, 'data URL payload is not valid base64');
  return { mediaType: params[0] || 'application/octet-stream', bytes: Buffer.from(data, 'base64') };
}
