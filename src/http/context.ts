import type { AgentConfig } from '../config/schema.js';
import type { ModelRepository } from '../repository/repository.js';
import type { ModelManager } from '../sessions/model-manager.js';

/** Whether the node takes new work; flipped by drain/shutdown (and later the coordinator). */
export interface NodeStatus {
  accepting: boolean;
  /** Why not, when not accepting. */
  reason: string;
}

/** What the HTTP layer is built from: everything injected, nothing global. */
export interface HttpContext {
  readonly config: AgentConfig;
  readonly models: ModelManager;
  readonly repository: ModelRepository;
  readonly node: NodeStatus;
  readonly agentVersion: string;
}
