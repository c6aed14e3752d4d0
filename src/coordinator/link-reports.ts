/**
 * What the link reports about the node: the `register` and `heartbeat` messages built from the
 * controller's {@link NodeDescription} and {@link NodeHeartbeat}.
 *
 * Contract: one odd entry never stops a report. A model or GPU that does not fit the protocol
 * is left out of it and invalid telemetry becomes `null`, each with one warning per entry (or
 * per kind of telemetry problem) for the life of the link, not one per heartbeat.
 */
import type { z } from 'zod';
import type { Logger } from '../util/logger.js';
import { messageOf } from '../errors.js';
import type { NodeDescription, NodeHeartbeat } from './link-types.js';
import {
  AGENT_CAPABILITIES,
  AgentMessageSchema,
  formatIssues,
  GpuInfoSchema,
  ModelInfoSchema,
  ModelLoadSchema,
  PROTOCOL_VERSION,
  TelemetrySchema,
  type AgentMessage,
  type Telemetry,
} from './protocol.js';

/** Filters report entries against the protocol schemas, warning once per rejected entry. */
export class ReportFilter {
  private readonly warned = new Set<string>();

  constructor(private readonly log: Logger) {}

  /** The entries that pass `schema` (a non-array is none); `what` names them in the warning. */
  entries<T>(entries: readonly T[], schema: z.ZodType, what: string): T[] {
    if (!Array.isArray(entries)) return [];
    return entries.filter((e) => {
      const parsed = schema.safeParse(e);
      if (parsed.success) return true;
      const key = `${what}:${String((e as { name?: unknown }).name)}`;
      if (!this.warned.has(key)) {
        this.warned.add(key);
        this.log.warn({ [what]: (e as { name?: unknown }).name, err: formatIssues(parsed.error) }, `${what} left out of coordinator reports: it does not fit the protocol`);
      }
      return false;
    });
  }

  /** Invalid telemetry is reported as null (with one warning per kind of problem), never drops the heartbeat. */
  telemetry(t: Telemetry | null | undefined): Telemetry | null {
    if (t === null || t === undefined) return null;
    const parsed = TelemetrySchema.safeParse(t);
    if (parsed.success) return parsed.data;
    const err = formatIssues(parsed.error);
    if (!this.warned.has(`telemetry:${err}`)) {
      this.warned.add(`telemetry:${err}`);
      this.log.warn({ err }, 'telemetry does not fit the protocol; heartbeats carry telemetry: null');
    }
    return null;
  }
}

/** The ids and versions the link adds to a node description. */
export interface RegisterIdentity {
  readonly nodeId: string;
  readonly sessionId: string;
  readonly agentVersion: string;
}

/**
 * The `register` message for `d`, not yet checked as a whole ({@link validRegisterMessage}
 * does). Throws only for a description that is not an object of the expected shape.
 */
export function registerMessage(d: NodeDescription, id: RegisterIdentity, filter: ReportFilter): AgentMessage {
  return {
    type: 'register',
    protocolVersion: PROTOCOL_VERSION,
    nodeId: id.nodeId,
    sessionId: id.sessionId,
    agentVersion: id.agentVersion,
    hostname: d.hostname,
    url: d.url,
    ...(d.grpcAddress ? { grpcAddress: d.grpcAddress } : {}),
    labels: { ...d.labels },
    gpus: filter.entries(d.gpus, GpuInfoSchema, 'GPU'),
    models: filter.entries(d.models, ModelInfoSchema, 'model'),
    capacity: d.capacity,
    nodeState: d.nodeState,
    capabilities: [...AGENT_CAPABILITIES],
  };
}

/**
 * The checked `register` message for `d`, or why `d` cannot make one (the connection's error:
 * the link logs it and drops the socket, so the node registers again after a backoff).
 */
export function validRegisterMessage(d: NodeDescription, id: RegisterIdentity, filter: ReportFilter): { ok: true; message: AgentMessage } | { ok: false; error: string } {
  let message: AgentMessage;
  try {
    message = registerMessage(d, id, filter);
  } catch (err) {
    return { ok: false, error: `invalid node description: ${messageOf(err)}` };
  }
  const parsed = AgentMessageSchema.safeParse(message);
  if (!parsed.success) return { ok: false, error: `invalid node description: ${formatIssues(parsed.error)}` };
  return { ok: true, message: parsed.data };
}

/** The `heartbeat` message number `seq` for `h`, stamped with wall-clock `at` (ms since the epoch). */
export function heartbeatMessage(h: NodeHeartbeat, seq: number, at: number, filter: ReportFilter): AgentMessage {
  return {
    type: 'heartbeat',
    seq,
    at,
    nodeState: h.nodeState,
    telemetry: filter.telemetry(h.telemetry),
    models: filter.entries(h.models, ModelLoadSchema, 'model'),
  };
}
