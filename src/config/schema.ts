/**
 * The agent's one configuration schema. Every key can be set, in increasing precedence, by
 * its default, the JSON file given with --config, the environment (GPU_AGENT_<KEY>) and a
 * command-line flag (--<key>). Values from env and flags arrive as strings and are coerced
 * here; the result is validated once and frozen. `--help` is generated from this schema.
 */
import { z } from 'zod';
import { PROVIDERS } from '../execution/ort-session.js';
import { parseBytes } from '../sessions/memory.js';

const bool = z.union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])])
  .transform((v) => v === true || v === 'true' || v === '1' || v === 'yes');

const list = <T extends z.ZodType<unknown, string>>(item: T) =>
  z.union([z.array(z.string()), z.string()])
    .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter(Boolean))
    .pipe(z.array(item));

/**
 * Numbers, or decimal strings (env and flags). Not z.coerce: it would turn '' (`--port=`) and
 * null into 0 and true into 1.
 */
const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.preprocess(
    (v) => (typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : v),
    z.number({ error: 'expected an integer' }).int().min(min).max(max),
  );

export const ConfigSchema = z.object({
  models: z.string().min(1).default('./models')
    .describe('model repository folder (Triton layout: <name>/<version>/model.onnx)'),
  host: z.string().min(1).default('127.0.0.1')
    .describe('address to listen on (0.0.0.0 for all; needs --api-token or --insecure)'),
  port: int(0, 65535).default(8000).describe('HTTP port (0 = any free port)'),
  grpcPort: int(0, 65535).default(8001)
    .describe("gRPC port of the Open Inference Protocol (Triton's GRPCInferenceService; 0 = no gRPC), on the same --host"),
  apiToken: z.string().min(8, 'the API token must be at least 8 characters').optional()
    .describe('bearer token required on every endpoint but health'),
  insecure: bool.default(false).describe('allow a non-loopback --host without --api-token'),
  publicMetrics: bool.default(false)
    .describe('serve GET /metrics without the API token, for scrapers that cannot send one (the llm-d router); it shows model names and counts, no data'),
  bodyLimit: int(1024).default(64 * 1024 * 1024).describe('largest request body in bytes (413 above it)'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')
    .describe('log level; debug also logs every request'),
  modelControlMode: z.enum(['explicit', 'none', 'poll']).default('explicit')
    .describe('explicit: the load/unload API works; none: models are fixed at start; poll: the repository is rescanned every --repository-poll-secs (Triton\'s modes)'),
  repositoryPollSecs: int(1).default(15)
    .describe('with --model-control-mode poll: seconds between scans of the repository (new, changed and removed model folders)'),
  loadModels: list(z.string()).default(['*'])
    .describe("models to load at start, comma-separated ('*' = every model in the repository)"),
  modelName: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'a model name: letters, digits, _ . - (up to 128, starting with a letter or digit)').optional()
    .describe("name of the model when --models is one model's folder (<dir>/model.onnx or <dir>/<version>/model.onnx, as KServe's /mnt/models); default the folder's name; unused for a repository"),
  requestTimeoutMs: int(0).default(300_000)
    .describe('the whole request (headers and body) must arrive within this, else 408 and the connection closes (0 = no limit); 300 s fits a 64 MiB body at ~2 Mbit/s'),
  headersTimeoutMs: int(1).default(30_000)
    .describe('the request line and headers must arrive within this, else 408 (slow-header attacks)'),
  keepAliveTimeoutMs: int(1).default(72_000)
    .describe('idle keep-alive connections close after this; above the 60 s idle timeout of common load balancers'),
  maxConnections: int(1).default(4096)
    .describe('concurrent HTTP connections (per front end with --http-processes); one above it gets 503 with Retry-After and is closed'),
  httpProcesses: int(1, 64).default(1)
    .describe('HTTP front-end processes (1 = this process serves HTTP); above 1, this process hands them the connections, each reads, decodes and encodes inference requests, and this process keeps the models and batchers (prototype, see docs/architecture.md)'),
  strictReadiness: bool.default(false)
    .describe("/v2/health/ready is true only once every model of --load-models and --preload is READY (Triton's strict readiness); otherwise it only means not draining"),
  ortTelemetry: bool.default(false)
    .describe("let onnxruntime keep and upload its own usage telemetry (Microsoft's; off: ORT_DISABLE_TELEMETRY=1 is set before it loads)"),
  shutdownGraceMs: int(0).default(30_000)
    .describe('on SIGTERM/drain: how long queued and running requests may take to finish before they fail'),
  maxImagePixels: int(1).default(40_000_000)
    .describe('largest image (width × height) accepted by image inputs; larger ones get 400 (decompression bombs)'),
  decodeConcurrency: int(1, 64).default(4)
    .describe('images decoded at once across all requests (sharp, on libuv threads)'),
  nvidiaSmiPath: z.string().min(1).default('nvidia-smi')
    .describe('nvidia-smi to read GPU inventory and telemetry from (no GPU: an empty list and why)'),
  telemetryIntervalMs: int(100).default(2000).describe('GPU and host telemetry sampling interval'),
  coordinatorUrl: z.string().regex(/^wss?:\/\/[^\s]+$/, 'must be a ws:// or wss:// URL, e.g. ws://coordinator:9000/agents').optional()
    .describe('coordinator to register with over WebSocket (none: the agent runs alone)'),
  coordinatorToken: z.string().min(8, 'the coordinator token must be at least 8 characters').optional()
    .describe('bearer token for the coordinator'),
  advertiseUrl: z.url({ message: 'must be a URL, e.g. http://10.0.0.5:8000' }).optional()
    .describe('HTTP URL the coordinator and clients should use to reach this agent (default: the listening address)'),
  labels: list(z.string().regex(/^[^=,\s]+=[^,]*$/, 'labels are key=value pairs, e.g. zone=eu-1,gpu=h100')).default([])
    .describe('labels sent to the coordinator, comma-separated key=value'),
  stateDir: z.string().min(1).optional()
    .describe('folder for the node id and the pulled-model cache (blobs/, pulls/), kept across restarts (default: $STATE_DIRECTORY under systemd, /var/lib/gpu-agent when writable, else $XDG_STATE_HOME/gpu-agent or ~/.local/state/gpu-agent)'),
  heartbeatIntervalMs: int(100).default(5000).describe('heartbeat interval to the coordinator'),
  memoryBudget: z.union([z.literal('auto'), z.number().int().positive(), z.string()])
    .transform((v, ctx) => {
      if (v === 'auto' || typeof v === 'number') return v;
      const b = parseBytes(v);
      if (b === undefined || b <= 0) {
        ctx.addIssue({ code: 'custom', message: `'${v}' is not a size; write e.g. 24GiB, 512M or a number of bytes` });
        return z.NEVER;
      }
      return b;
    })
    .default('auto')
    .describe('memory the loaded models may take on each device (GPU when models run there, else host); auto = 90% of the device'),
  preload: list(z.string()).default([])
    .describe('models loaded at start and never evicted (comma-separated)'),
  lazyLoad: bool.default(true)
    .describe('load a repository model on its first inference request (explicit mode only)'),
  idleUnloadSeconds: int(0).default(0)
    .describe('unload models idle this long (0 = never); preloaded and busy models stay'),
  providers: list(z.enum(PROVIDERS as [string, ...string[]])).default(['cuda', 'cpu'])
    .describe('execution providers in order of preference; each failure is logged, then the next is tried'),
  cudaDeviceId: int(0).default(0).describe('GPU index for the CUDA provider'),
  strictGpu: bool.default(false)
    .describe('refuse to load a model whose instance_group asks for KIND_GPU when no usable GPU runs it (default: fall back to the CPU with a warning)'),
  intraOpThreads: int(0).default(0).describe('onnxruntime threads per operator (0 = auto: one per core but one, at least 1, so HTTP keeps a core)'),
  intraOpSpinning: bool.default(false)
    .describe("onnxruntime's session.intra_op.allow_spinning: idle pool threads spin-wait for work (faster hand-off, burns the cores HTTP needs)"),
  queueFullDelayMs: int(0, 10_000).default(50)
    .describe('a request that finds its model queue full waits this long for a place before its 429 (0 = refuse at once): clients that retry at once, ignoring Retry-After, then wait instead of spinning the event loop on refusals'),
  batchingPolicy: z.enum(['work_conserving', 'triton']).default('work_conserving')
    .describe("dynamic batching: 'work_conserving' (wait for company only when more requests are likely within the delay) or 'triton' (always wait out max_queue_delay)"),
  interOpThreads: int(0).default(0).describe('onnxruntime threads across operators (0 = its default)'),
  graphOptimizationLevel: z.enum(['disabled', 'basic', 'extended', 'all']).default('all')
    .describe('onnxruntime graph optimisation level'),
  executionMode: z.enum(['sequential', 'parallel']).default('sequential').describe('onnxruntime execution mode'),
  sessionThread: z.enum(['auto', 'worker', 'main']).default('auto')
    .describe("where sessions run: 'worker' threads (runs overlap with HTTP), the 'main' thread (no hop; a run blocks requests), or 'auto' (worker for CUDA and for CPU models of 4 MiB or more, main for smaller CPU models)"),
  cpuMemArena: bool.default(true).describe('onnxruntime CPU memory arena'),
  memPattern: bool.default(true).describe('onnxruntime memory pattern optimisation'),
  releaseFreedMemory: bool.default(true)
    .describe("after an unload, return the memory onnxruntime freed inside malloc to the OS (malloc_trim; see README 'Memory across load/unload')"),
  defaultMaxBatchSize: int(1).default(16)
    .describe('max_batch_size given to batchable models whose config sets none'),
  cacheBudget: z.union([z.literal('none'), z.number().int().positive(), z.string()])
    .transform((v, ctx) => {
      if (v === 'none' || typeof v === 'number') return v;
      const b = parseBytes(v);
      if (b === undefined || b <= 0) {
        ctx.addIssue({ code: 'custom', message: `'${v}' is not a size; write e.g. 50GiB, 800M, a number of bytes, or none` });
        return z.NEVER;
      }
      return b;
    })
    .default('none')
    .describe('disk the pulled-model blob cache (<state-dir>/blobs) may take; least recently used blobs no loaded or pinned model needs are evicted (none = no limit)'),
  allowHttp: bool.default(false).describe('allow plain http:// model sources (and S3/HF endpoints); https:// only otherwise'),
  pullStallSeconds: int(1).default(30).describe('a model download with no bytes for this long is dropped and retried'),
  pullRetries: int(0, 100).default(6).describe('retries of an interrupted model download (backoff 1 s, 2 s, 4 s … up to 30 s)'),
  pullRanges: int(1, 64).default(4).describe('parallel byte ranges (connections) for one large model file when the source supports Range; 1 = one stream'),
  pullRangeThreshold: z.union([z.number().int().positive(), z.string()])
    .transform((v, ctx) => {
      if (typeof v === 'number') return v;
      const b = parseBytes(v);
      if (b === undefined || b <= 0) {
        ctx.addIssue({ code: 'custom', message: `'${v}' is not a size; write e.g. 64MiB, 800M or a number of bytes` });
        return z.NEVER;
      }
      return b;
    })
    .default(64 * 1024 * 1024)
    .describe('model files of at least this size (with a size in the manifest) download in --pull-ranges parallel byte ranges'),
}).strict().superRefine((c, ctx) => {
  if (c.providers.length === 0) ctx.addIssue({ code: 'custom', path: ['providers'], message: 'name at least one provider, e.g. --providers cpu' });
  if (c.requestTimeoutMs > 0 && c.headersTimeoutMs > c.requestTimeoutMs) {
    ctx.addIssue({ code: 'custom', path: ['headersTimeoutMs'], message: `must not exceed --request-timeout-ms (${c.requestTimeoutMs}); lower it or raise --request-timeout-ms` });
  }
});

export type AgentConfig = Readonly<z.output<typeof ConfigSchema>>;
export type ConfigKey = keyof z.input<typeof ConfigSchema>;

export const CONFIG_KEYS = Object.keys(ConfigSchema.shape) as ConfigKey[];

/** `apiToken` → `--api-token`. */
export function flagOf(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** `apiToken` → `GPU_AGENT_API_TOKEN`. */
export function envOf(key: string): string {
  return `GPU_AGENT_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/** Keys whose flag takes no value (`--insecure` means true). */
export function isBooleanKey(key: string): boolean {
  return ['insecure', 'publicMetrics', 'cpuMemArena', 'memPattern', 'lazyLoad', 'allowHttp', 'strictReadiness', 'ortTelemetry'].includes(key);
}

export function describeKey(key: ConfigKey): string {
  return ConfigSchema.shape[key].description ?? '';
}
