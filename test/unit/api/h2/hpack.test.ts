/**
 * The HPACK codec of the lean HTTP/2 server (src/api/h2/hpack.ts, hpack-huffman.ts) against RFC 7541: the decoding
 * examples of Appendix C (header lists and dynamic table states, byte for byte), the static table of Appendix A, the
 * Huffman code of Appendix B, every error a peer can provoke (each a COMPRESSION_ERROR), and the encoder helpers
 * decoded back.
 */

import { describe, it, expect } from 'vitest';
import {
  HpackDecoder,
  HpackError,
  STATUS_200,
  encodeInteger,
  indexedStatic,
  literalWithoutIndexing,
} from '../../../../src/api/h2/hpack.js';
import { HUFFMAN_CODES, HUFFMAN_LENGTHS, huffmanDecode } from '../../../../src/api/h2/hpack-huffman.js';

type Field = [string, string];

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

function pairs(flat: string[]): Field[] {
  const fields: Field[] = [];
  for (let i = 0; i < flat.length; i += 2) fields.push([flat[i], flat[i + 1]]);
  return fields;
}

function decode(decoder: HpackDecoder, block: Buffer): { fields: Field[]; listSize: number } {
  const out: string[] = [];
  const listSize = decoder.decode(block, 0, block.length, out);
  return { fields: pairs(out), listSize };
}

const listSizeOf = (fields: Field[]): number => fields.reduce((sum, [n, v]) => sum + n.length + v.length + 32, 0);

interface Step {
  fields: Field[];
  table: Field[];
  tableSize: number;
}

/** Decodes the blocks in order with one decoder, checking the header list and the dynamic table after each. */
function runSeries(maxTableSize: number, steps: Step[], blocks: string[]): void {
  const decoder = new HpackDecoder(maxTableSize);
  for (const [i, step] of steps.entries()) {
    const { fields, listSize } = decode(decoder, hex(blocks[i]));
    expect(fields).toEqual(step.fields);
    expect(listSize).toBe(listSizeOf(step.fields));
    expect(decoder.tableEntries).toEqual(step.table);
    expect(decoder.tableSize).toBe(step.tableSize);
  }
}

const expectHpackError = (decoder: HpackDecoder, block: string, message?: RegExp): void => {
  const run = () => decode(decoder, hex(block));
  expect(run).toThrow(HpackError);
  if (message) expect(run).toThrow(message);
};

// RFC 7541 Appendix C: decoding examples. C.3/C.4 are the same requests and C.5/C.6 the same responses, with and
// without Huffman coding, so each pair shares its header lists and table states; only the hex differs.

const AUTHORITY: Field = [':authority', 'www.example.com'];
const NO_CACHE: Field = ['cache-control', 'no-cache'];
const CUSTOM: Field = ['custom-key', 'custom-value'];
const GET_HTTP: Field[] = [[':method', 'GET'], [':scheme', 'http'], [':path', '/'], AUTHORITY];
const REQUESTS: Step[] = [
  { fields: GET_HTTP, table: [AUTHORITY], tableSize: 57 },
  { fields: [...GET_HTTP, NO_CACHE], table: [NO_CACHE, AUTHORITY], tableSize: 110 },
  {
    fields: [[':method', 'GET'], [':scheme', 'https'], [':path', '/index.html'], AUTHORITY, CUSTOM],
    table: [CUSTOM, NO_CACHE, AUTHORITY],
    tableSize: 164,
  },
];

const PRIVATE: Field = ['cache-control', 'private'];
const DATE_21: Field = ['date', 'Mon, 21 Oct 2013 20:13:21 GMT'];
const DATE_22: Field = ['date', 'Mon, 21 Oct 2013 20:13:22 GMT'];
const LOCATION: Field = ['location', 'https://www.example.com'];
const GZIP: Field = ['content-encoding', 'gzip'];
const COOKIE: Field = ['set-cookie', 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1'];
const RESPONSES: Step[] = [
  {
    fields: [[':status', '302'], PRIVATE, DATE_21, LOCATION],
    table: [LOCATION, DATE_21, PRIVATE, [':status', '302']],
    tableSize: 222,
  },
  {
    fields: [[':status', '307'], PRIVATE, DATE_21, LOCATION],
    table: [[':status', '307'], LOCATION, DATE_21, PRIVATE],
    tableSize: 222,
  },
  {
    fields: [[':status', '200'], PRIVATE, DATE_22, LOCATION, GZIP, COOKIE],
    table: [COOKIE, GZIP, DATE_22],
    tableSize: 215,
  },
];

const REQUESTS_C3_1 = '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d';

describe('HpackDecoder: RFC 7541 Appendix C', () => {
  it('C.2.1 literal field with indexing', () => {
    const field: Field = ['custom-key', 'custom-header'];
    const block = '400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572';
    runSeries(4096, [{ fields: [field], table: [field], tableSize: 55 }], [block]);
  });

  it('C.2.2 literal field without indexing', () => {
    const block = '040c 2f73 616d 706c 652f 7061 7468';
    runSeries(4096, [{ fields: [[':path', '/sample/path']], table: [], tableSize: 0 }], [block]);
  });

  it('C.2.3 literal field never indexed', () => {
    const block = '1008 7061 7373 776f 7264 0673 6563 7265 74';
    runSeries(4096, [{ fields: [['password', 'secret']], table: [], tableSize: 0 }], [block]);
  });

  it('C.2.4 indexed field', () => {
    runSeries(4096, [{ fields: [[':method', 'GET']], table: [], tableSize: 0 }], ['82']);
  });

  it('C.3 requests without Huffman coding', () => {
    runSeries(4096, REQUESTS, [
      REQUESTS_C3_1,
      '8286 84be 5808 6e6f 2d63 6163 6865',
      '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
    ]);
  });

  it('C.4 requests with Huffman coding', () => {
    runSeries(4096, REQUESTS, [
      '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
      '8286 84be 5886 a8eb 1064 9cbf',
      '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
    ]);
  });

  it('C.5 responses without Huffman coding, table size 256 (evictions)', () => {
    runSeries(256, RESPONSES, [
      `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
         2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d`,
      '4803 3330 37c1 c0bf',
      `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
         54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
         5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31`,
    ]);
  });

  it('C.6 responses with Huffman coding, table size 256 (evictions)', () => {
    runSeries(256, RESPONSES, [
      `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
         2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
      '4883 640e ffc1 c0bf',
      `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
         77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
         9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
    ]);
  });
});

describe('HpackDecoder: tables and state', () => {
  it('has the static table of RFC 7541 Appendix A', () => {
    // prettier-ignore
    const appendixA = [
      ':authority', ':method GET', ':method POST', ':path /', ':path /index.html', ':scheme http', ':scheme https',
      ':status 200', ':status 204', ':status 206', ':status 304', ':status 400', ':status 404', ':status 500',
      'accept-charset', 'accept-encoding gzip, deflate', 'accept-language', 'accept-ranges', 'accept',
      'access-control-allow-origin', 'age', 'allow', 'authorization', 'cache-control', 'content-disposition',
      'content-encoding', 'content-language', 'content-length', 'content-location', 'content-range', 'content-type',
      'cookie', 'date', 'etag', 'expect', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match',
      'if-range', 'if-unmodified-since', 'last-modified', 'link', 'location', 'max-forwards', 'proxy-authenticate',
      'proxy-authorization', 'range', 'referer', 'refresh', 'retry-after', 'server', 'set-cookie',
      'strict-transport-security', 'transfer-encoding', 'user-agent', 'vary', 'via', 'www-authenticate',
    ];
    const block = Buffer.from(appendixA.map((_, i) => indexedStatic(i + 1)));
    const { fields } = decode(new HpackDecoder(), block);
    expect(fields.map(([n, v]) => (v ? `${n} ${v}` : n))).toEqual(appendixA);
  });

  it('appends to out and starts at `start`', () => {
    const out = ['x', 'y'];
    const block = hex('ff 82 84 ff');
    expect(new HpackDecoder().decode(block, 1, 3, out)).toBe(42 + 38);
    expect(out).toEqual(['x', 'y', ':method', 'GET', ':path', '/']);
  });

  it('applies table size updates at the start of a block, evicting; 0 empties and keeps the table empty', () => {
    const decoder = new HpackDecoder();
    decode(decoder, hex('4001 6101 62 4001 6301 64')); // a: b, c: d (34 octets each)
    expect(decoder.tableEntries).toEqual([
      ['c', 'd'],
      ['a', 'b'],
    ]);
    expect(decode(decoder, hex('3f 24 be')).fields).toEqual([['c', 'd']]); // limit 67: a: b evicted
    expect(decoder.tableSize).toBe(34);
    decode(decoder, hex('20 4001 6501 66')); // limit 0: nothing fits
    expect(decoder.tableEntries).toEqual([]);
    decode(decoder, hex('20 3fe1 1f 4001 6501 66')); // two updates (§4.2), back to 4096
    expect(decoder.tableEntries).toEqual([['e', 'f']]);
  });

  it('empties the table for an entry larger than it (§4.4), and wraps the ring', () => {
    const decoder = new HpackDecoder(256);
    for (let i = 0; i < 20; i++) decode(decoder, Buffer.from([0x40, 1, 0x61 + i, 1, 0x61])); // 34 octets each
    expect(decoder.tableEntries.length).toBe(7);
    expect(decoder.tableEntries[0]).toEqual(['t', 'a']);
    expect(decoder.tableEntries[6]).toEqual(['n', 'a']);
    expect(decode(decoder, hex('c2')).fields).toEqual([['p', 'a']]); // index 66: the fifth newest
    const big = Buffer.concat([hex('4001 78 7f 8001'), Buffer.alloc(255, 0x78)]); // 1 + 255 + 32 > 256
    expect(decode(decoder, big).fields[0][1].length).toBe(255);
    expect(decoder.tableEntries).toEqual([]);
    expect(decoder.tableSize).toBe(0);
  });

  it('keeps working after a block that failed before changing the table', () => {
    const decoder = new HpackDecoder();
    decode(decoder, hex(REQUESTS_C3_1));
    expectHpackError(decoder, '82 80');
    expect(decode(decoder, hex('8286 84be 5808 6e6f 2d63 6163 6865')).fields).toEqual(REQUESTS[1].fields);
    expect(decoder.tableSize).toBe(110);
  });
});

describe('HpackDecoder: errors (COMPRESSION_ERROR)', () => {
  it('index 0', () => expectHpackError(new HpackDecoder(), '80', /index 0/));

  it('an index past the tables, indexed or as a literal name', () => {
    expectHpackError(new HpackDecoder(), 'be', /past the tables/);
    expectHpackError(new HpackDecoder(), '7e 0161', /past the tables/);
    const decoder = new HpackDecoder();
    decode(decoder, hex(REQUESTS_C3_1));
    expect(decode(decoder, hex('be')).fields).toEqual([AUTHORITY]);
    expectHpackError(decoder, 'bf', /past the tables/);
  });

  it('truncated integers and fields', () => {
    expectHpackError(new HpackDecoder(), 'ff', /truncated/);
    expectHpackError(new HpackDecoder(), 'ff 80', /truncated/);
    expectHpackError(new HpackDecoder(), '00', /truncated/);
    expectHpackError(new HpackDecoder(), '00 0161', /truncated/);
    expectHpackError(new HpackDecoder(), '00 0161 7f', /truncated/);
  });

  it('integer overflow and overlong integers', () => {
    expectHpackError(new HpackDecoder(), 'ff ffff ffff 0f', /overflow/);
    expectHpackError(new HpackDecoder(), 'ff 8080 8080 8001', /too long/);
    // 2^31 - 1 is still an integer, and then a string longer than the block.
    expectHpackError(new HpackDecoder(), '00 7f 80 ff ff ff 07', /past the block/);
  });

  it('a string length beyond the block', () => {
    expectHpackError(new HpackDecoder(), '00 0561 62', /past the block/);
    expectHpackError(new HpackDecoder(), '00 0161 8361 62', /past the block/);
  });

  it('Huffman padding of 8 bits or more, or with a 0 bit', () => {
    expect(decode(new HpackDecoder(), hex('00 0161 811f')).fields).toEqual([['a', 'a']]); // 'a' 00011 + 111
    expectHpackError(new HpackDecoder(), '00 0161 821f ff', /Huffman/); // 11 bits of padding
    expectHpackError(new HpackDecoder(), '00 0161 81ff', /Huffman/); // 8 bits of padding alone
    expectHpackError(new HpackDecoder(), '00 0161 811e', /Huffman/); // padding 110
    expectHpackError(new HpackDecoder(), '00 0161 8100', /Huffman/); // '0' 00000 + 000
  });

  it('a Huffman string containing EOS', () => {
    expectHpackError(new HpackDecoder(), '00 0161 84ff ffff ff', /EOS/); // EOS, then 2 bits of padding
    expectHpackError(new HpackDecoder(), '00 0161 85ff ffff fc1f', /EOS/); // EOS 30 ones, then 'a'
  });

  it('a table size update above the advertised limit', () => {
    expect(decode(new HpackDecoder(), hex('3fe1 1f 82')).fields).toEqual([[':method', 'GET']]); // 4096
    expectHpackError(new HpackDecoder(), '3fe2 1f', /above the limit/); // 4097
    expectHpackError(new HpackDecoder(256), '3fe2 01', /above the limit/); // 257
  });

  it('a table size update after a header field', () => {
    expectHpackError(new HpackDecoder(), '82 20', /after a header field/);
  });
});

describe('Huffman code (RFC 7541 Appendix B)', () => {
  it('derives the codes of Appendix B', () => {
    // [symbol, code, bits] sampled from Appendix B, over every code length class.
    // prettier-ignore
    const sample: [number, number, number][] = [
      [0, 0x1ff8, 13], [1, 0x7fffd8, 23], [10, 0x3ffffffc, 30], [32, 0x14, 6], [48, 0x0, 5], [65, 0x21, 6],
      [97, 0x3, 5], [116, 0x9, 5], [127, 0xffffffc, 28], [128, 0xfffe6, 20], [200, 0x3ffffe2, 26],
      [255, 0x3ffffee, 26], [256, 0x3fffffff, 30],
    ];
    for (const [symbol, code, bits] of sample) {
      expect([symbol, HUFFMAN_CODES[symbol], HUFFMAN_LENGTHS[symbol]]).toEqual([symbol, code, bits]);
    }
  });

  it('decodes every octet (all code lengths) and the empty string', () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => 255 - i));
    const encoded = huffmanEncode(all);
    expect(huffmanDecode(encoded, 0, encoded.length)).toBe(all.toString('latin1'));
    expect(huffmanDecode(encoded, 0, 0)).toBe('');
  });
});

/** Test-only encoder: each symbol's code as bits, then 1-bits to the octet (§5.2 padding). */
function huffmanEncode(octets: Uint8Array): Buffer {
  let bits = '';
  for (const octet of octets) bits += HUFFMAN_CODES[octet].toString(2).padStart(HUFFMAN_LENGTHS[octet], '0');
  bits = bits.padEnd(Math.ceil(bits.length / 8) * 8, '1');
  return Buffer.from(Array.from({ length: bits.length / 8 }, (_, i) => parseInt(bits.slice(8 * i, 8 * i + 8), 2)));
}

describe('encoder helpers', () => {
  it('encodes integers as RFC 7541 C.1', () => {
    const out: number[] = [];
    encodeInteger(10, 5, 0, out);
    encodeInteger(1337, 5, 0xe0, out);
    encodeInteger(42, 8, 0, out);
    expect(out).toEqual([10, 0xff, 154, 10, 42]);
  });

  it(':status 200 is the one octet 0x88', () => {
    expect(indexedStatic(8)).toBe(STATUS_200);
    expect(decode(new HpackDecoder(), Buffer.from([STATUS_200])).fields).toEqual([[':status', '200']]);
    expect(() => indexedStatic(0)).toThrow(RangeError);
    expect(() => indexedStatic(62)).toThrow(RangeError);
  });

  it('literalWithoutIndexing: static name index, else a new name; raw strings', () => {
    const contentType = literalWithoutIndexing('content-type', 'application/grpc');
    expect(contentType).toEqual(Buffer.concat([hex('0f 10 10'), Buffer.from('application/grpc')]));
    const status = literalWithoutIndexing('grpc-status', '0');
    expect(status).toEqual(Buffer.concat([hex('00 0b'), Buffer.from('grpc-status'), hex('01 30')]));
    expect(literalWithoutIndexing(':path', '')).toEqual(hex('04 00'));
  });

  it('round-trips every helper through the decoder, leaving the table empty', () => {
    const fields: Field[] = [
      ['content-type', 'application/grpc+proto'],
      [':status', '503'],
      ['www-authenticate', 'x'],
      ['grpc-status', '14'],
      ['grpc-message', 'x'.repeat(300)],
      ['grpc-message', 'caf\u00e9 \u0080\u00ff'], // octets ≥ 0x80 stay one octet each (latin1)
      ['x-empty', ''],
    ];
    const block = Buffer.concat([Buffer.from([STATUS_200]), ...fields.map(([n, v]) => literalWithoutIndexing(n, v))]);
    const decoder = new HpackDecoder();
    const { fields: decoded, listSize } = decode(decoder, block);
    expect(decoded).toEqual([[':status', '200'], ...fields]);
    expect(listSize).toBe(listSizeOf(decoded));
    expect(decoder.tableSize).toBe(0);
  });

  it('round-trips encodeInteger through indexed fields past one octet', () => {
    const decoder = new HpackDecoder(16_384);
    for (let i = 0; i < 300; i++) decode(decoder, Buffer.from([0x40, 1, 0x61, 2, i >> 8, i & 0xff]));
    // [index, entry inserted i-th, octets of the index]
    const cases = [
      [62, 299, 1],
      [126, 235, 1],
      [127, 234, 2],
      [128, 233, 2],
      [254, 107, 2],
      [255, 106, 3],
      [361, 0, 3],
    ];
    for (const [index, i, octets] of cases) {
      const block: number[] = [];
      encodeInteger(index, 7, 0x80, block);
      expect(block.length).toBe(octets);
      expect(decode(decoder, Buffer.from(block)).fields).toEqual([['a', String.fromCharCode(i >> 8, i & 0xff)]]);
    }
  });

  it('refuses chars with no latin1 octet', () => {
    expect(() => literalWithoutIndexing('grpc-message', '\u20ac')).toThrow(RangeError);
  });
});
