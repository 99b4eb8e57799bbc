import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ConfigError, configFromEnv, resolveConfig, type Config, type RawConfig } from './config.js';

/**
 * Where the configuration comes from, in increasing precedence: embedded defaults, a YAML/JSON file (`--config`),
 * KV_INDEXER_* environment variables, then `--set section.key=value` flags.
 */
export interface ConfigSources {
  file: string | null;
  env: NodeJS.ProcessEnv;
  flags: readonly string[];
}

export function configFromFile(path: string): RawConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = parseYaml(text); // YAML is a superset of JSON: one parser for both
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid YAML/JSON: ${(err as Error).message}`);
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value))
    throw new ConfigError(`config file ${path} must hold an object`);
  return value as RawConfig;
}

/**
 * `section.key=value` (or `section.group.key=value` in a nested section: `load.scrape.enabled=true`) flags; values are
 * parsed as YAML scalars/lists (`16`, `true`, `[a, b]`, `"text"`).
 */
export function configFromFlags(flags: readonly string[]): RawConfig {
  const raw: RawConfig = {};
  for (const flag of flags) {
    const eq = flag.indexOf('=');
    const path = eq > 0 ? flag.slice(0, eq).split('.') : [];
    if (path.length < 2 || path.length > 3 || path.some((p) => p === '')) {
      throw new ConfigError(
        `--set ${flag}: expected section.key=value, e.g. keys.blockSize=16 (section.group.key=value in a nested section)`,
      );
    }
    const text = flag.slice(eq + 1);
    let value: unknown;
    try {
      value = parseYaml(text);
    } catch {
      value = text;
    }
    let section: Record<string, unknown> = (raw[path[0]] ??= {});
    if (path.length === 3) {
      const group = section[path[1]];
      section = (section[path[1]] =
        group !== null && typeof group === 'object' && !Array.isArray(group) ? group : {}) as Record<string, unknown>;
    }
    section[path[path.length - 1]] = value ?? '';
  }
  return raw;
}

export function loadConfigFrom(sources: ConfigSources): Config {
  return resolveConfig(
    sources.file ? configFromFile(sources.file) : {},
    configFromEnv(sources.env),
    configFromFlags(sources.flags),
  );
}

/** Splits `--config F`, `--set k=v` (repeatable) and `--print-config` from the other arguments. */
export function parseConfigArgs(argv: readonly string[]): {
  file: string | null;
  flags: string[];
  print: boolean;
  rest: string[];
} {
  let file: string | null = null;
  const flags: string[] = [];
  const rest: string[] = [];
  let print = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (name: string) => {
      const inline = a.startsWith(`${name}=`) ? a.slice(name.length + 1) : null;
      if (inline !== null) return inline;
      const next = argv[++i];
      if (next === undefined) throw new ConfigError(`${name} needs a value`);
      return next;
    };
    if (a === '--config' || a.startsWith('--config=')) file = value('--config');
    else if (a === '--set' || a.startsWith('--set=')) flags.push(value('--set'));
    else if (a === '--print-config') print = true;
    else rest.push(a);
  }
  return { file, flags, print, rest };
}
