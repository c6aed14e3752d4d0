/**
 * What serving an inference needs, whatever the transport: every part injected, nothing
 * global. The HTTP server and the gRPC service are both built from one `ServingContext`
 * (the same object, so per-context state such as the shared memory registry is shared).
 */
import type { AgentConfig } from '../config/schema.js';
import type { AgentMetrics } from '../metrics/registry.js';
import type { ImageLimits } from '../preprocess/request.js';
import type { ModelRepository } from '../repository/repository.js';
import type { ModelManager } from '../sessions/model-manager.js';
import type { PullService } from '../sources/pull-service.js';

/**
 * The node's state, as health checks and the coordinator see it:
 * - ready: takes work;
 * - cordoned: still serves requests but reports not-ready, so load balancers and the
 *   coordinator send new work elsewhere;
 * - draining: new inference gets 503 + Retry-After (gRPC: UNAVAILABLE) while queued and
 *   running requests finish.
 */
export type NodeState = 'ready' | 'cordoned' | 'draining';

export interface NodeStatus {
  state: NodeState;
  /** Why the node is not ready, when it is not. */
  reason: string;
}

export interface ServingContext {
  readonly config: AgentConfig;
  readonly models: ModelManager;
  readonly repository: ModelRepository;
  readonly node: NodeStatus;
  readonly agentVersion: string;
  readonly metrics: AgentMetrics;
  readonly images: ImageLimits;
  /** Pulls by manifest (the load API's `source` parameter); absent in contexts built without one. */
  readonly pulls?: PullService;
}
