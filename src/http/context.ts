/**
 * The HTTP layer is built from the transport-free serving context (inference/context.ts);
 * the names below stay for the routes that import them from here.
 */
import type { ServingContext } from '../inference/context.js';

export type { NodeState, NodeStatus } from '../inference/context.js';

/** What the HTTP layer is built from: everything injected, nothing global. */
export type HttpContext = ServingContext;
