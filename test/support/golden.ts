import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The shared golden vectors (../shared beside the project). */
export interface GoldenCase {
  name: string;
  model: string;
  hashSeed: string;
  blockSize: number;
  tokens: number[];
  mmItems: { identifier: string; offset: number; length: number }[];
  cacheSalt: string | null;
  perBlockExtra: (string[] | null)[] | null;
  rootKey: string;
  keys: string[];
}

export const SHARED_DIR = fileURLToPath(new URL('../../../shared/', import.meta.url));

export function loadGoldenKeys(): GoldenCase[] {
  const raw = JSON.parse(readFileSync(`${SHARED_DIR}golden/block-keys.json`, 'utf8')) as { cases: GoldenCase[] };
  return raw.cases;
}
