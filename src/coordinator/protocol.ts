/**
 * The coordinator protocol, version 1: what an agent and a coordinator say to each other over
 * one WebSocket (`ws[s]://<coordinator>/agents`, `Authorization: Bearer <token>` on the upgrade).
 *
 * Every frame is one UTF-8 JSON text message. Each direction has ONE discriminated union on
 * `type` ({@link AgentMessageSchema}, {@link CoordinatorMessageSchema}); coordinator authors can
 * import these schemas (or read docs/coordinator-protocol.schema.json, generated from them by
 * scripts/gen-protocol-docs.mjs). docs/coordinator-protocol.md is the prose reference.
 *
 * Compatibility rule: within one protocol version, fields may be added (a receiver ignores
 * object keys it does not know); a new message `type`, a new command, a removed or retyped
 * field means a new version. The version is checked once, in `register`.
 *
 * This module has no dependency but zod, so it can be copied into a coordinator written
 * elsewhere.
 */
import { z } from 'zod';
// The model package manifest (zod only, like this module): load_model may carry one as `source`.
import { ManifestSchema } from '../sources/manifest.js';

/** The protocol version this build speaks (sent in `register` and `registered`). */
export const PROTOCOL_VERSION = 1 as const;

/** The WebSocket path agents connect to on the reference coordinator. */
export const AGENTS_PATH = '/agents';

/**
 * WebSocket close codes of the protocol (4000–4999 is the range RFC 6455 leaves to applications).
 * The reason string (at most 123 bytes) repeats the meaning in words.
 */
export const CloseCode = {
  /** Normal close: the agent is shutting down. */
  NORMAL: 1000,
  /** The coordinator is shutting down. The agent reconnects with backoff. */
  GOING_AWAY: 1001,
  /** Missing or wrong bearer token ('missing token' / 'invalid token'). The agent slows its retries down. */
  INVALID_TOKEN: 4001,
  /** Protocol error: no `register` first, an invalid `register`, or no `register` in time. */
  PROTOCOL_ERROR: 4002,
  /** The agent's protocol version is not supported by the coordinator. The agent slows its retries down. */
  UNSUPPORTED_VERSION: 4003,
  /** Another connection registered with the same node id; this one is closed. The agent slows its retries down. */
  SUPERSEDED: 4004,
  /** Not sent on purpose: the agent's WebSocket library closes with it for a frame over 1 MiB. */
  MESSAGE_TOO_BIG: 1009,
  /** Never sent: what a receiver sees when the TCP connection broke without a close frame. */
  ABNORMAL: 1006,
} as const;

/** `code` of every command_result (receivers accept codes they do not know). */
export const CommandResultCode = {
  OK: 'ok',
  /** The command did not validate (e.g. a path as model name). */
  INVALID_COMMAND: 'invalid_command',
  /** The model is not in the node's repository. */
  NOT_FOUND: 'not_found',
  /** The node's state does not accept it (load_model while draining). */
  NODE_DRAINING: 'node_draining',
  /** It conflicts with a command in progress on the same model (unload while loading, …). */
  CONFLICT: 'conflict',
  /** Not possible in the node's configuration (e.g. --model-control-mode none). */
  FAILED_PRECONDITION: 'failed_precondition',
  /** A drain ended by uncordon before the node was empty. */
  CANCELLED: 'cancelled',
  /** The node is shutting down or the resource is unavailable. */
  UNAVAILABLE: 'unavailable',
  /** It ran and failed (e.g. the model file does not load). */
  FAILED: 'failed',
} as const;
export type CommandResultCodeValue = (typeof CommandResultCode)[keyof typeof CommandResultCode];

/** Close codes after which retrying quickly cannot help: the agent retries only every `refusedRetryMs`. */
export const REFUSAL_CLOSE_CODES: readonly number[] = [CloseCode.INVALID_TOKEN, CloseCode.UNSUPPORTED_VERSION, CloseCode.SUPERSEDED];

/**
 * Additions within version 1 that an agent announces in `register.capabilities` (a coordinator
 * must treat a missing list as none of them: the version 1 baseline). Mixed-version fleets:
 * a coordinator uses an addition only with the agents that list it.
 */
export const AGENT_CAPABILITIES = [
  /** Command ids are deduplicated for COMMAND_DEDUP_WINDOW_MS: a repeated id gets the first result again. */
  'command_dedup',
  /** Every command_result carries `code`. */
  'command_result_code',
  /** Responses carry x-compute-time-us / compute_time_us; heartbeats carry ModelLoad.computeMs. */
  'compute_time',
] as const;

/** How long an agent remembers a finished command's result for deduplication. */
export const COMMAND_DEDUP_WINDOW_MS = 600_000;

/** Codes of the `error` message (open-ended strings: a receiver must accept codes it does not know). */
export const ErrorCodes = {
  /** The frame is not valid JSON (or is a binary frame). */
  BAD_JSON: 'bad_json',
  /** The message has a `type` this side does not know. */
  UNKNOWN_TYPE: 'unknown_type',
  /** The message has a known `type` but does not match its schema. */
  INVALID_MESSAGE: 'invalid_message',
  /** The message is valid but not allowed now (e.g. a second `register` on one connection). */
  UNEXPECTED: 'unexpected',
} as const;

/**
 * A model name as the repository knows it: a folder name, never a path. Commands may name only
 * such names; `../x`, `/etc/passwd`, `a/b` and `.hidden` are refused.
 */
export const MODEL_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Node and session ids: UUIDs in practice; safe in a URL path. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

const int = (min = 0) => z.number().int().min(min).max(Number.MAX_SAFE_INTEGER);
const text = (max: number) => z.string().max(max);
const epochMs = () => int().describe('wall-clock time, milliseconds since the Unix epoch');

export const ModelNameSchema = z
  .string()
  .regex(MODEL_NAME_PATTERN, 'must be a model name of the repository (letters, digits, _ . -, starting with a letter or digit, at most 128 characters), never a path')
  .describe('a model name of the repository (never a path)');

export const NodeIdSchema = z.string().regex(ID_PATTERN, 'must be 1-128 characters of letters, digits, _ . : -').describe('node id: persisted by the agent, stable across restarts');
export const SessionIdSchema = z.string().regex(ID_PATTERN, 'must be 1-128 characters of letters, digits, _ . : -').describe('session id: new for every agent process');
export const CommandIdSchema = z.string().min(1).max(128).describe('command id, chosen by the coordinator, echoed in command_result');

/** Whether the node takes new work, as the agent reports it. */
export const NodeStateSchema = z
  .enum(['ready', 'cordoned', 'draining'])
  .describe('ready: takes new work; cordoned: takes no new work, finishes what it has; draining: cordoned and finishing queued work (a drain command is in progress or done)')
  .meta({ id: 'NodeState' });

/** Model version states, as in the agent's HTTP API (Triton's). */
export const ModelStateSchema = z
  .enum(['DOWNLOADING', 'VERIFYING', 'LOADING', 'READY', 'UNLOADING', 'UNAVAILABLE'])
  .describe("a model version's state; UNAVAILABLE comes with a reason (e.g. 'unloaded', 'not loaded', a load error). DOWNLOADING and VERIFYING: a version being pulled from its source (load_model with a source)")
  .meta({ id: 'ModelState' });

export const GpuInfoSchema = z
  .object({
    index: int().describe('device index (nvidia-smi / CUDA ordinal)'),
    name: text(256).describe("product name, e.g. 'NVIDIA H100 80GB HBM3'"),
    uuid: text(128).nullable().optional().describe("GPU UUID, e.g. 'GPU-…'"),
    memoryTotalBytes: z.number().min(0).nullable().optional().describe('total device memory in bytes (null: unknown)'),
    driverVersion: text(64).nullable().optional(),
    computeCapability: text(16).nullable().optional().describe("e.g. '9.0'"),
  })
  .loose()
  .describe('one GPU of the node (static inventory); other keys (pciBusId, architecture, …) are allowed and passed through')
  .meta({ id: 'GpuInfo' });

export const PullProgressSchema = z
  .object({
    bytesDone: int().describe('bytes of the version on disk so far (kept from an interrupted download included)'),
    bytesTotal: int().optional().describe('bytes of the whole version, when known'),
    rateBytesPerSecond: z.number().min(0).describe('transfer rate over the last seconds'),
    etaSeconds: z.number().min(0).optional().describe('seconds left at that rate, when known'),
  })
  .describe('download progress of a version being pulled')
  .meta({ id: 'PullProgress' });

export const ProvenanceSchema = z
  .object({
    manifestDigest: text(80).describe('sha256:<hex> of the canonical manifest the version was pulled from'),
    source: text(4096).describe('where its model file came from (credentials and query strings removed)'),
  })
  .describe('where a pulled version came from')
  .meta({ id: 'Provenance' });

export const ModelInfoSchema = z
  .object({
    name: ModelNameSchema,
    version: text(32).optional().describe('model version (a number, as a string); absent when the model has no loaded version'),
    state: ModelStateSchema,
    reason: text(4096).optional().describe('why the model is UNAVAILABLE'),
    provider: text(32).optional().describe("execution provider the model really runs on, e.g. 'cuda' or 'cpu'"),
    progress: PullProgressSchema.optional().describe('present while DOWNLOADING or VERIFYING'),
    provenance: ProvenanceSchema.optional().describe('present for a version pulled from a manifest'),
  })
  .describe('a model of the repository (or one loaded version of it) and its state')
  .meta({ id: 'ModelInfo' });

export const CapacitySchema = z
  .object({
    gpuCount: int().describe('number of GPUs the agent may use'),
    gpuMemoryTotalBytes: int().optional().describe('sum of the GPUs\' memory in bytes'),
    memoryBudgetBytes: int().optional().describe('memory the agent may fill with model sessions, in bytes'),
    maxLoadedModels: int().optional().describe('most models the agent keeps loaded at once'),
  })
  .describe('what the node can take on')
  .meta({ id: 'Capacity' });

/**
 * One GPU sample. Deliberately loose: the telemetry module owns the real field list (the names
 * here follow it; null = not reported by the driver), and keys not named here are passed
 * through unchanged. Swap in the telemetry module's schema when it is final; within version 1
 * that may only add fields.
 */
export const GpuSampleSchema = z
  .object({
    index: int().describe('device index, matching GpuInfo.index'),
    uuid: text(128).nullable().optional(),
    utilizationGpuPct: z.number().min(0).max(100).nullable().optional().describe('GPU utilisation, %'),
    memoryUsedBytes: z.number().min(0).nullable().optional(),
    memoryTotalBytes: z.number().min(0).nullable().optional(),
    temperatureC: z.number().nullable().optional(),
    powerDrawW: z.number().min(0).nullable().optional(),
    sampledAt: z.number().nullable().optional().describe('when this GPU was sampled (ms since the epoch)'),
  })
  .loose()
  .describe('one GPU sample; other keys are allowed and passed through')
  .meta({ id: 'GpuSample' });

export const TelemetrySchema = z
  .object({
    collectedAt: epochMs().nullable().optional().describe('when the sample was taken (wall clock, ms since the epoch)'),
    gpus: z.array(GpuSampleSchema).max(64),
    host: z.object({}).loose().nullable().optional().describe('host CPU load and memory of the node (the telemetry module\'s host sample; keys pass through)'),
    gpuReason: text(1024).optional().describe('why there are no GPU samples (e.g. nvidia-smi not found), when gpus is empty'),
  })
  .loose()
  .describe('the latest telemetry sample; other keys (host CPU, memory, …) are allowed and passed through')
  .meta({ id: 'Telemetry' });

export const ModelLoadSchema = z
  .object({
    name: ModelNameSchema,
    version: text(32).optional(),
    queueDepth: int().describe('requests waiting in the queue'),
    inFlight: int().describe('requests executing now'),
    throughput: z.number().min(0).describe('inferences per second since the previous heartbeat'),
    computeMs: z.number().min(0).optional().describe('compute time of every batch this model version ran in this agent session, ms (cost accounting; each response carries its share in x-compute-time-us)'),
    liveSequences: int().optional().describe('sequence models only: sequences started and not yet ended or expired'),
  })
  .describe('load of one served model')
  .meta({ id: 'ModelLoad' });

// ---------------------------------------------------------------------------------------------
// Agent → coordinator

export const RegisterMessageSchema = z
  .object({
    type: z.literal('register'),
    protocolVersion: z.literal(PROTOCOL_VERSION).describe('the protocol version the agent speaks'),
    nodeId: NodeIdSchema,
    sessionId: SessionIdSchema,
    hostname: text(253).min(1),
    agentVersion: text(64).min(1),
    url: z.url().max(2048).describe('advertised base URL of the agent\'s HTTP (KServe V2) API'),
    grpcAddress: text(260).min(3).optional().describe('advertised host:port of the agent\'s gRPC API (Triton\'s GRPCInferenceService); absent when gRPC is off'),
    labels: z.record(z.string().min(1).max(128), text(256)).describe('free-form key/value labels (zone, GPU class, …)'),
    gpus: z.array(GpuInfoSchema).max(64),
    models: z.array(ModelInfoSchema).max(10_000).describe('every model of the repository with its state'),
    capacity: CapacitySchema,
    nodeState: NodeStateSchema,
    capabilities: z.array(text(64)).max(64).optional().describe('additions within version 1 this agent supports (command_dedup, command_result_code, compute_time); absent = none; receivers ignore names they do not know'),
  })
  .describe('first message on every connection (and after every reconnect): the full state of the node')
  .meta({ id: 'RegisterMessage' });

export const HeartbeatMessageSchema = z
  .object({
    type: z.literal('heartbeat'),
    seq: int(1).describe('1, 2, 3, … for the session; never repeats, may skip (a heartbeat dropped from a full buffer)'),
    at: epochMs().describe('when the agent produced it (buffered heartbeats arrive late)'),
    nodeState: NodeStateSchema,
    telemetry: TelemetrySchema.nullable().describe('latest telemetry, or null when none is available'),
    models: z.array(ModelLoadSchema).max(10_000).describe('per served model: queue depth, in-flight requests, throughput'),
  })
  .describe('periodic liveness and load report (every 5 s by default)')
  .meta({ id: 'HeartbeatMessage' });

export const AgentEventSchema = z
  .discriminatedUnion('kind', [
    z.object({
      kind: z.literal('model_state'),
      model: ModelNameSchema,
      version: text(32).optional(),
      state: ModelStateSchema,
      reason: text(4096).optional(),
      provider: text(32).optional(),
      progress: PullProgressSchema.optional().describe('while DOWNLOADING/VERIFYING: sent at most a few times a second, and on every state change'),
      provenance: ProvenanceSchema.optional(),
    }).describe('a model version changed state (or, while it downloads, made progress)'),
    z.object({
      kind: z.literal('model_load_failed'),
      model: ModelNameSchema,
      version: text(32).optional(),
      error: text(4096),
    }).describe('loading a model failed (also reported as model_state UNAVAILABLE)'),
    z.object({
      kind: z.literal('gpu_error'),
      gpu: int().optional().describe('device index, when known'),
      xid: int().optional().describe('NVIDIA XID, when known'),
      error: text(4096),
    }).describe('a GPU reported an error'),
    z.object({
      kind: z.literal('node_state'),
      state: NodeStateSchema,
      reason: text(1024).optional(),
    }).describe('the node changed its node state on its own (e.g. draining on SIGTERM)'),
  ])
  .describe('what happened, discriminated by kind')
  .meta({ id: 'AgentEvent' });

export const EventMessageSchema = z
  .object({
    type: z.literal('event'),
    at: epochMs().describe('when it happened'),
    event: AgentEventSchema,
  })
  .describe('something the coordinator should know about now, not at the next heartbeat')
  .meta({ id: 'EventMessage' });

export const CommandResultMessageSchema = z
  .object({
    type: z.literal('command_result'),
    id: CommandIdSchema,
    ok: z.boolean(),
    code: text(64).optional().describe("machine-readable outcome: ok | invalid_command | not_found | node_draining | conflict | failed_precondition | cancelled | unavailable | failed (receivers accept codes they do not know; absent from agents without the command_result_code capability)"),
    error: text(4096).optional().describe('present exactly when ok is false: why the command failed or was refused, in words (never a server path)'),
  })
  .refine((m) => m.ok === (m.error === undefined), { message: 'error must be present exactly when ok is false', path: ['error'] })
  .describe('answer to one command: ok, or an error that says why')
  .meta({ id: 'CommandResultMessage' });

export const ErrorMessageSchema = z
  .object({
    type: z.literal('error'),
    code: text(64).describe("bad_json | unknown_type | invalid_message | unexpected (receivers accept codes they do not know)"),
    message: text(4096),
    ref: text(128).optional().describe('id of the message this error is about, when it had one'),
  })
  .describe('the peer sent something this side could not accept; the connection stays open')
  .meta({ id: 'ErrorMessage' });

/** Everything an agent may send. */
export const AgentMessageSchema = z
  .discriminatedUnion('type', [RegisterMessageSchema, HeartbeatMessageSchema, EventMessageSchema, CommandResultMessageSchema, ErrorMessageSchema])
  .describe('a message from an agent to the coordinator')
  .meta({ id: 'AgentMessage' });

// ---------------------------------------------------------------------------------------------
// Coordinator → agent

export const CommandSchema = z
  .discriminatedUnion('type', [
    z.object({
      type: z.literal('load_model'),
      model: ModelNameSchema,
      source: ManifestSchema.optional().describe("a model package manifest (its name must be the command's model): the agent pulls the version into its cache, verified by sha256, and loads it; without one the model must already be in the repository"),
    }).describe('load (or reload) a model; ok when it is READY'),
    z.object({
      type: z.literal('rollback_model'),
      model: ModelNameSchema,
      version: z.number().int().min(1).optional().describe('the pulled version to serve again (default: the newest cached one below the serving version)'),
    }).describe('serve an earlier pulled version again, from the cache only (no download); ok when it is READY'),
    z.object({ type: z.literal('unload_model'), model: ModelNameSchema }).describe('unload a model after its queued and running requests finish'),
    z.object({ type: z.literal('cordon') }).describe('take no new work; what is queued and running finishes'),
    z.object({ type: z.literal('uncordon') }).describe('take new work again (also ends a drain)'),
    z.object({ type: z.literal('drain') }).describe('cordon, finish everything queued and running; ok only once the node is empty'),
    z.object({ type: z.literal('ping') }).describe('answered ok at once: a round trip through the agent'),
  ])
  .describe('what the coordinator asks the agent to do (also the body of POST /nodes/{id}/commands)')
  .meta({ id: 'Command' });

export const RegisteredMessageSchema = z
  .object({
    type: z.literal('registered'),
    protocolVersion: z.literal(PROTOCOL_VERSION),
    nodeId: NodeIdSchema,
    sessionId: SessionIdSchema,
    heartbeatIntervalMs: int(100).max(600_000).optional().describe('when present, the agent sends heartbeats at this interval'),
  })
  .describe('acknowledges a register; the agent then sends what it buffered and starts heartbeats')
  .meta({ id: 'RegisteredMessage' });

export const CommandMessageSchema = z
  .object({
    type: z.literal('command'),
    id: CommandIdSchema,
    command: CommandSchema,
  })
  .describe('a command; the agent answers each with exactly one command_result of the same id')
  .meta({ id: 'CommandMessage' });

/** Everything a coordinator may send. */
export const CoordinatorMessageSchema = z
  .discriminatedUnion('type', [RegisteredMessageSchema, CommandMessageSchema, ErrorMessageSchema])
  .describe('a message from the coordinator to an agent')
  .meta({ id: 'CoordinatorMessage' });

// ---------------------------------------------------------------------------------------------
// Types

export type NodeState = z.infer<typeof NodeStateSchema>;
export type ModelState = z.infer<typeof ModelStateSchema>;
export type GpuInfo = z.infer<typeof GpuInfoSchema>;
export type ModelInfo = z.infer<typeof ModelInfoSchema>;
export type Capacity = z.infer<typeof CapacitySchema>;
export type GpuSample = z.infer<typeof GpuSampleSchema>;
export type Telemetry = z.infer<typeof TelemetrySchema>;
export type ModelLoad = z.infer<typeof ModelLoadSchema>;
export type RegisterMessage = z.infer<typeof RegisterMessageSchema>;
export type HeartbeatMessage = z.infer<typeof HeartbeatMessageSchema>;
export type AgentEvent = z.infer<typeof AgentEventSchema>;
export type EventMessage = z.infer<typeof EventMessageSchema>;
export type CommandResultMessage = z.infer<typeof CommandResultMessageSchema>;
export type ErrorMessage = z.infer<typeof ErrorMessageSchema>;
export type AgentMessage = z.infer<typeof AgentMessageSchema>;
export type Command = z.infer<typeof CommandSchema>;
export type CommandType = Command['type'];
export type RegisteredMessage = z.infer<typeof RegisteredMessageSchema>;
export type CommandMessage = z.infer<typeof CommandMessageSchema>;
export type CoordinatorMessage = z.infer<typeof CoordinatorMessageSchema>;

const AGENT_TYPES: ReadonlySet<string> = new Set(['register', 'heartbeat', 'event', 'command_result', 'error']);
const COORDINATOR_TYPES: ReadonlySet<string> = new Set(['registered', 'command', 'error']);

// ---------------------------------------------------------------------------------------------
// Decoding

/** Why a frame was not accepted; `id`/`type` are what could be read from it, for the answer. */
export interface DecodeFailure {
  readonly ok: false;
  readonly code: (typeof ErrorCodes)[keyof typeof ErrorCodes];
  readonly message: string;
  /** The parsed JSON, when the frame was JSON at all. */
  readonly raw?: unknown;
  readonly type?: string;
  readonly id?: string;
}
export type Decoded<T> = { readonly ok: true; readonly message: T } | DecodeFailure;

/** One line per issue: `command.model: must be a model name …`. */
export function formatIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : '(message)'}: ${i.message}`)
    .join('; ');
}

function decode<T>(data: string, schema: z.ZodType<T>, known: ReadonlySet<string>, side: string): Decoded<T> {
  let raw: unknown;
  try {
    raw = JSON.parse(data);
  } catch (err) {
    return { ok: false, code: ErrorCodes.BAD_JSON, message: `not valid JSON: ${(err as Error).message}` };
  }
  const obj = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? (raw as Record<string, unknown>) : undefined;
  const type = typeof obj?.type === 'string' ? obj.type : undefined;
  const id = typeof obj?.id === 'string' ? obj.id : undefined;
  if (!obj) return { ok: false, code: ErrorCodes.INVALID_MESSAGE, message: 'a message must be a JSON object with a "type"', raw };
  if (type === undefined) return { ok: false, code: ErrorCodes.INVALID_MESSAGE, message: 'the message has no string "type"', raw, id };
  if (!known.has(type)) {
    return { ok: false, code: ErrorCodes.UNKNOWN_TYPE, message: `unknown message type '${type.slice(0, 64)}' (${side} accepts: ${[...known].join(', ')})`, raw, type: type.slice(0, 64), id };
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) return { ok: false, code: ErrorCodes.INVALID_MESSAGE, message: `invalid '${type}' message: ${formatIssues(parsed.error)}`, raw, type, id };
  return { ok: true, message: parsed.data };
}

/** Decode a text frame sent by an agent (never throws). */
export function decodeAgentMessage(data: string): Decoded<AgentMessage> {
  return decode(data, AgentMessageSchema, AGENT_TYPES, 'the coordinator');
}

/** Decode a text frame sent by a coordinator (never throws). */
export function decodeCoordinatorMessage(data: string): Decoded<CoordinatorMessage> {
  return decode(data, CoordinatorMessageSchema, COORDINATOR_TYPES, 'the agent');
}

/** Truncate a string to at most `maxBytes` UTF-8 bytes (close reasons are limited to 123). */
export function truncateUtf8(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s) <= maxBytes) return s;
  let out = s.slice(0, maxBytes);
  while (out.length > 0 && Buffer.byteLength(out) > maxBytes - 3) out = out.slice(0, -1); // '…' takes 3 bytes
  return `${out}…`;
}

// ---------------------------------------------------------------------------------------------
// JSON Schema

/**
 * The whole protocol as one JSON Schema (draft 2020-12) document: the root accepts any message
 * of either direction; `$defs` holds AgentMessage, CoordinatorMessage, Command and the shared
 * pieces. Written to docs/coordinator-protocol.schema.json by scripts/gen-protocol-docs.mjs.
 */
export function protocolJsonSchema(): Record<string, unknown> {
  // Every schema with a meta id (AgentMessage, Command, Telemetry, …) becomes one entry of $defs.
  // io: 'input' — receivers ignore unknown keys, so the schema does not forbid them either.
  const root = z.toJSONSchema(z.union([AgentMessageSchema, CoordinatorMessageSchema]), { io: 'input', target: 'draft-2020-12' }) as {
    $defs?: Record<string, unknown>;
  };
  const defs = Object.fromEntries(Object.entries(root.$defs ?? {}).sort(([a], [b]) => a.localeCompare(b))) as Record<string, Record<string, unknown>>;
  // The refinement of command_result, which zod cannot express in JSON Schema: error iff !ok.
  const result = defs.CommandResultMessage;
  if (result) {
    result.if = { properties: { ok: { const: false } }, required: ['ok'] };
    result.then = { required: ['error'] };
    result.else = { not: { required: ['error'] } };
  }
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'urn:gpu-node-agent:coordinator-protocol:v1',
    title: `gpu-node-agent coordinator protocol v${PROTOCOL_VERSION}`,
    description:
      `Messages exchanged over the agent ↔ coordinator WebSocket (${AGENTS_PATH}), one JSON object per text frame. ` +
      'AgentMessage: agent → coordinator; CoordinatorMessage: coordinator → agent. Generated from src/coordinator/protocol.ts; do not edit.',
    'x-protocol-version': PROTOCOL_VERSION,
    'x-close-codes': CloseCode,
    'x-command-result-codes': CommandResultCode,
    'x-capabilities': AGENT_CAPABILITIES,
    'x-command-dedup-window-ms': COMMAND_DEDUP_WINDOW_MS,
    // anyOf, not oneOf: an `error` message is valid in both directions.
    anyOf: [{ $ref: '#/$defs/AgentMessage' }, { $ref: '#/$defs/CoordinatorMessage' }],
    $defs: defs,
  };
}
