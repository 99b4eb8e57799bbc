export { ConfigSchema, ConfigError, loadConfig, type Config } from './config.js';
export { createLogger, type Logger } from './logger.js';
export { Metrics, startMetricsServer, type Snapshot } from './metrics.js';
