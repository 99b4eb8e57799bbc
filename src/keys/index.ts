export { BlockHasher, type BlockExtra, type KeyFingerprint, type KeySchemeConfig } from './block-hasher.js';
export { blockExtras, type PlaceholderItem } from './extras.js';
export { CborWriter, encodeBlockExtra } from './cbor.js';
export { fnv64a } from './fnv.js';
export { parseKey, formatKey } from './key-format.js';
