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
