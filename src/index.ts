/** Public API of the package, for embedding the agent and for tests. */
export { Agent, type AgentDeps } from './agent.js';
export { loadConfig, parseArgs, ConfigError } from './config/load.js';
export { ConfigSchema, type AgentConfig } from './config/schema.js';
export { AgentError, ERROR_STATUS, type ErrorCode } from './errors.js';
export { ModelConfigSchema, type ModelConfig } from './repository/model-config.js';
