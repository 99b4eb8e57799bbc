// Writes the small real test images of fixtures/images/ (solid colour, valid encodings, a few hundred bytes each).
// No image library is needed: each format is encoded directly with the simplest valid bitstream.
// Run: node scripts/gen-prompt-images.mjs
import { mkdirSync, writeFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';

const OUT = new URL('../fixtures/images/', import.meta.url);

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
const u32be = (v) => Buffer.from([v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255]);
const u16le = (v) => Buffer.from([v & 255, v >>> 8]);
const u16be = (v) => Buffer.from([v >>> 8, v & 255]);

/** 8-bit greyscale PNG, filter 0 rows of one grey level. */
export function png(width, height, grey = 128) {
  const chunk = (type, data) => {
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    return Buffer.concat([u32be(data.length), td, u32be(crc32(td))]);
  };
  const raw = Buffer.alloc((width + 1) * height, grey);
  for (let y = 0; y < height; y++) raw[y * (width + 1)] = 0;
  const ihdr = Buffer.concat([u32be(width), u32be(height), Buffer.from([8, 0, 0, 0, 0])]);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Baseline greyscale JPEG of mid grey: every 8×8 block is DC diff 0 + EOB, with one-symbol Huffman tables. */
export function jpeg(width, height) {
  const seg = (marker, data) => Buffer.concat([Buffer.from([0xff, marker]), u16be(data.length + 2), data]);
  const counts = (n) => Buffer.from([n, ...new Array(15).fill(0)]);
  const blocks = Math.ceil(width / 8) * Math.ceil(height / 8);
  const scanBits = blocks * 2; // '0' DC category 0, '0' EOB
  const scan = Buffer.alloc(Math.ceil(scanBits / 8), 0);
  if (scanBits % 8) scan[scan.length - 1] = (1 << (8 - (scanBits % 8))) - 1; // pad with 1 bits
  return Buffer.concat([
    Buffer.from([0xff, 0xd8]),
    seg(0xe0, Buffer.from([0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0])), // JFIF
    seg(0xdb, Buffer.from([0x00, ...new Array(64).fill(1)])), // DQT table 0, all ones
    seg(0xc0, Buffer.concat([Buffer.from([8]), u16be(height), u16be(width), Buffer.from([1, 1, 0x11, 0])])),
    seg(0xc4, Buffer.concat([Buffer.from([0x00]), counts(1), Buffer.from([0x00])])), // DC 0: symbol 0
    seg(0xc4, Buffer.concat([Buffer.from([0x10]), counts(1), Buffer.from([0x00])])), // AC 0: EOB
    seg(0xda, Buffer.from([1, 1, 0x00, 0, 63, 0])),
    scan,
    Buffer.from([0xff, 0xd9]),
  ]);
}

class BitWriter {
  bytes = [];
  acc = 0;
  n = 0;
  put(value, bits) {
    for (let i = 0; i < bits; i++) {
      this.acc |= ((value >>> i) & 1) << this.n++;
      if (this.n === 8) this.flush();
    }
  }
  flush() {
    if (this.n > 0) this.bytes.push(this.acc);
    this.acc = 0;
    this.n = 0;
  }
  done() {
    this.flush();
    return Buffer.from(this.bytes);
  }
}

/** Lossless VP8L bitstream of one ARGB colour: five single-symbol prefix codes, so pixels take zero bits. */
function vp8l(width, height, [a, r, g, b] = [255, 200, 100, 50]) {
  const w = new BitWriter();
  w.put(0x2f, 8);
  w.put(width - 1, 14);
  w.put(height - 1, 14);
  w.put(0, 1); // alpha hint
  w.put(0, 3); // version
  w.put(0, 1); // no transform
  w.put(0, 1); // no colour cache
  w.put(0, 1); // no meta prefix codes
  for (const sym of [g, r, b, a]) {
    w.put(1, 1); // simple code
    w.put(0, 1); // one symbol
    w.put(1, 1); // 8-bit symbol
    w.put(sym, 8);
  }
  w.put(1, 1); // distance code: simple, one 1-bit symbol 0
  w.put(0, 1);
  w.put(0, 1);
  w.put(0, 1);
  return w.done();
}

function riff(chunks) {
  const body = Buffer.concat(
    chunks.flatMap(([fourcc, data]) => [
      Buffer.from(fourcc, 'ascii'),
      Buffer.from([data.length & 255, (data.length >>> 8) & 255, (data.length >>> 16) & 255, data.length >>> 24]),
      data,
      data.length % 2 ? Buffer.alloc(1) : Buffer.alloc(0),
    ]),
  );
  const size = body.length + 4;
  return Buffer.concat([
    Buffer.from('RIFF'),
    Buffer.from([size & 255, (size >>> 8) & 255, (size >>> 16) & 255, size >>> 24]),
    Buffer.from('WEBP'),
    body,
  ]);
}

export const webpLossless = (width, height) => riff([['VP8L', vp8l(width, height)]]);

/** Extended WebP: a VP8X canvas header followed by the VP8L image. */
export function webpExtended(width, height) {
  const x = Buffer.alloc(10);
  x.writeUIntLE(width - 1, 4, 3);
  x.writeUIntLE(height - 1, 7, 3);
  return riff([
    ['VP8X', x],
    ['VP8L', vp8l(width, height)],
  ]);
}

/** GIF89a, two-colour palette, LZW with a clear code every two literals so the code size stays 3 bits. */
export function gif(width, height) {
  const w = new BitWriter();
  const pixels = width * height;
  for (let i = 0; i < pixels; i++) {
    if (i % 2 === 0) w.put(4, 3); // clear
    w.put(1, 3); // palette index 1
  }
  w.put(5, 3); // end of information
  const lzw = w.done();
  const blocks = [];
  for (let i = 0; i < lzw.length; i += 255) {
    const part = lzw.subarray(i, i + 255);
    blocks.push(Buffer.from([part.length]), part);
  }
  return Buffer.concat([
    Buffer.from('GIF89a', 'ascii'),
    u16le(width),
    u16le(height),
    Buffer.from([0x80, 0, 0]),
    Buffer.from([0, 0, 0, 255, 255, 255]),
    Buffer.from([0x2c]),
    u16le(0),
    u16le(0),
    u16le(width),
    u16le(height),
    Buffer.from([0]),
    Buffer.from([2]),
    ...blocks,
    Buffer.from([0]),
    Buffer.from([0x3b]),
  ]);
}

const FILES = {
  'grey-640x480.png': () => png(640, 480),
  'grey-70x70.png': () => png(70, 70),
  'grey-1024x768.jpg': () => jpeg(1024, 768),
  'solid-100x100.webp': () => webpLossless(100, 100),
  'solid-300x200-vp8x.webp': () => webpExtended(300, 200),
  'dots-64x48.gif': () => gif(64, 48),
};

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop())) {
  mkdirSync(OUT, { recursive: true });
  for (const [name, make] of Object.entries(FILES)) {
    const data = make();
    writeFileSync(new URL(name, OUT), data);
    console.log(`${name}: ${data.length} bytes`);
  }
}
