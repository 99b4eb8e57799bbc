export {
  ConfigSchema,
  ImageFetchSchema,
  type ImageFetchConfig,
  ConfigError,
  ENV_PATHS,
  configFromEnv,
  loadConfig,
  resolveConfig,
  type Config,
  type RawConfig,
} from './config.js';
export { LoadScrapeSchema, type LoadScrapeConfig } from './load-scrape-config.js';
export { createLogger, type Logger } from './logger.js';
export { Metrics, startMetricsServer, type Snapshot } from './metrics.js';
export { SelectConfigSchema, type SelectConfig } from './select-config.js';
export { SelectMetrics } from './select-metrics.js';
export {
  configFromFile,
  configFromFlags,
  loadConfigFrom,
  parseConfigArgs,
  type ConfigSources,
} from './config-sources.js';
export { threadSchedstat } from './thread-schedstat.js';
