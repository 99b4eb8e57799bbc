import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
// @ts-expect-error -- a plain .mjs build script without type declarations
import { compileWat, renderModule } from '../../../scripts/build-wasm.mjs';

describe('generated WebAssembly', () => {
  it('src/keys/fnv-chain.wasm.ts is current with fnv-chain.wat (run `npm run gen:wasm` if not)', async () => {
    const dir = new URL('../../../src/keys/', import.meta.url);
    const b64 = (await compileWat(fileURLToPath(new URL('fnv-chain.wat', dir)))) as string;
    expect(readFileSync(new URL('fnv-chain.wasm.ts', dir), 'utf8')).toBe(renderModule(b64));
  });
});
