/** The coordinator link (agent side), the reference coordinator, and the protocol they speak. */
export * from './protocol.js';
export {
  backoffDelay,
  CoordinatorLink,
  DEFAULT_BACKOFF,
  DropOldestBuffer,
  type BackoffSettings,
  type CoordinatorLinkOptions,
  type LinkState,
  type LinkStatus,
  type NodeController,
  type NodeDescription,
  type NodeHeartbeat,
} from './link.js';
export { loadOrCreateNodeId, NODE_ID_FILE } from './node-id.js';
export {
  CommandRefused,
  startCoordinator,
  type CommandOutcome,
  type CoordinatorOptions,
  type NodeDetail,
  type NodeHealth,
  type NodeView,
  type RunningCoordinator,
} from './server.js';
export { ThroughputMeter } from './throughput.js';
export { CommandDedup, CommandResultCode, admitCommand, redactPaths } from './command-policy.js';
export { CoordinatorStore, type AuditEntry, type AuditRow } from './audit/store.js';
export { CostLedger, priceOf, type CostOptions, type CostReport } from './cost/ledger.js';
export { createGateway, type GatewayOptions } from './gateway/gateway.js';
export * as gatewayPolicy from './gateway/policy.js';
