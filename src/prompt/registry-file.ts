import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { PromptError } from './errors.js';
import type { RegistryConfig } from './model-config.js';

/** Reads a registry file (JSON or YAML); relative model dirs are resolved from the file's directory. */
export function loadRegistryFile(path: string): { config: RegistryConfig; baseDir: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new PromptError('failed_precondition', `cannot read model registry: ${(err as Error).message}`, path);
  }
  let value: unknown;
  try {
    value = /\.json$/i.test(path) ? JSON.parse(text) : parse(text);
  } catch (err) {
    throw new PromptError(
      'failed_precondition',
      `model registry is not valid ${/\.json$/i.test(path) ? 'JSON' : 'YAML'}: ${(err as Error).message}`,
      path,
    );
  }
  return { config: value as RegistryConfig, baseDir: dirname(resolve(path)) };
}
