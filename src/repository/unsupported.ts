/**
 * Fields of Triton's ModelConfig that the agent reads but does not implement. A config that
 * sets one is refused by name, with what to do instead:
 *   `field 'ensemble_scheduling' is not supported by gpu-node-agent (ensembles are not supported; ...)`
 * A field left at its default (`allow_ragged_batch: false`, `response_cache { enable: false }`,
 * an empty list or map) changes nothing, so it is accepted and dropped before validation.
 * Applies to config.pbtxt, config.json and load-request configs alike.
 */

interface Rule {
  /** Dotted path; `[]` iterates a list: `input[].allow_ragged_batch`. */
  readonly path: string;
  /** True when the value set is harmless (the default): accepted and removed. */
  readonly harmless: (v: unknown) => boolean;
  readonly reason: string;
}

const empty = (v: unknown): boolean =>
  v === undefined || v === null || v === false || v === '' || v === 0 ||
  (Array.isArray(v) && v.length === 0) ||
  (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every(empty));
const never = (): boolean => false;

const TENSORRT = 'a TensorRT feature; ONNX models through onnxruntime have no use for it, remove it';

const RULES: readonly Rule[] = [
  { path: 'ensemble_scheduling', harmless: never, reason: "ensembles are not supported; call the models one after another from the client (the agent's own image pipelines are platform 'ocr_pipeline')" },
  { path: 'batch_input', harmless: empty, reason: 'batch inputs (ragged batching helpers) are not supported; pad the inputs in the client to one shape' },
  { path: 'batch_output', harmless: empty, reason: 'batch outputs (ragged batching helpers) are not supported; pad the inputs in the client to one shape' },
  { path: 'runtime', harmless: (v) => empty(v) || v === 'onnxruntime', reason: 'the agent runs every model with onnxruntime-node; remove it' },
  { path: 'cc_model_filenames', harmless: empty, reason: 'one ONNX file serves every GPU; name it with default_model_filename' },
  { path: 'metric_tags', harmless: empty, reason: 'per-model metric labels are not supported; remove it (metrics carry model and version labels)' },
  { path: 'model_operations', harmless: empty, reason: 'custom operator libraries are not loaded; export the model with standard ONNX operators' },
  { path: 'model_transaction_policy', harmless: empty, reason: 'decoupled models (several responses per request) are not supported; remove it or set decoupled: false' },
  { path: 'model_repository_agents', harmless: empty, reason: 'repository agents are not supported; prepare (decrypt, check) the files before they go into the repository' },
  { path: 'response_cache', harmless: empty, reason: 'the response cache is not supported; remove it or set enable: false' },
  { path: 'model_metrics', harmless: empty, reason: 'custom metric buckets are not supported; remove it' },
  { path: 'input[].allow_ragged_batch', harmless: empty, reason: 'ragged batches are not supported: requests batch together only when their shapes match; remove it' },
  { path: 'input[].is_shape_tensor', harmless: empty, reason: TENSORRT },
  { path: 'output[].is_shape_tensor', harmless: empty, reason: TENSORRT },
  { path: 'input[].is_non_linear_format_io', harmless: empty, reason: TENSORRT },
  { path: 'output[].is_non_linear_format_io', harmless: empty, reason: TENSORRT },
  { path: 'instance_group[].rate_limiter', harmless: empty, reason: 'the rate limiter is not supported; lower count or the queue limits of dynamic_batching instead' },
  { path: 'instance_group[].secondary_devices', harmless: empty, reason: 'secondary devices (NVDLA) are a TensorRT feature; remove them' },
  { path: 'instance_group[].profile', harmless: empty, reason: 'optimization profiles are a TensorRT feature; remove them' },
  { path: 'instance_group[].passive', harmless: empty, reason: 'passive instances are not supported; remove it' },
  { path: 'instance_group[].host_policy', harmless: empty, reason: 'host policies are not supported; remove it' },
  { path: 'instance_group[].kind', harmless: (v) => v !== 'KIND_MODEL', reason: 'KIND_MODEL leaves placement to the backend; use KIND_GPU, KIND_CPU or KIND_AUTO' },
  { path: 'dynamic_batching.priority_queue_policy', harmless: empty, reason: 'per-priority queue policies are not supported; default_queue_policy applies to every priority level' },
  { path: 'optimization.priority', harmless: (v) => v === undefined || v === 'PRIORITY_DEFAULT', reason: 'model priorities are a TensorRT feature; remove it' },
];

interface Hit {
  readonly path: (string | number)[];
  readonly rule: Rule;
  readonly remove: () => void;
}

function visit(node: unknown, parts: readonly string[], at: (string | number)[], rule: Rule, hits: Hit[]): void {
  if (typeof node !== 'object' || node === null || Array.isArray(node)) return;
  const obj = node as Record<string, unknown>;
  const [head, ...rest] = parts;
  const list = head!.endsWith('[]');
  const key = list ? head!.slice(0, -2) : head!;
  if (!(key in obj)) return;
  const value = obj[key];
  if (rest.length === 0) {
    hits.push({ path: [...at, key], rule, remove: () => delete obj[key] });
    return;
  }
  if (list) {
    if (Array.isArray(value)) value.forEach((v, i) => visit(v, rest, [...at, key, i], rule, hits));
  } else {
    visit(value, rest, [...at, key], rule, hits);
  }
}

function pathText(path: readonly (string | number)[]): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('').replace(/^\./, '');
}

/**
 * Refuse (throw) when `config` sets a Triton field the agent does not implement; drop the
 * ones left at their defaults (in place). `where(path)` says where a field is written
 * (file and line), for the error text.
 */
export function checkUnsupported(config: unknown, where: (path: readonly (string | number)[]) => string): void {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) return;
  const hits: Hit[] = [];
  for (const rule of RULES) visit(config, rule.path.split('.'), [], rule, hits);
  const refused: string[] = [];
  for (const hit of hits) {
    const value = (hit.path.reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], config));
    if (hit.rule.harmless(value)) continue;
    refused.push(`${where(hit.path)}: field '${pathText(hit.path)}' is not supported by gpu-node-agent (${hit.rule.reason})`);
  }
  if (refused.length) throw new Error(refused.join('; '));
  // Only once nothing is refused: a harmless default is removed before validation.
  // (instance_group kinds stay: KIND_AUTO/GPU/CPU are implemented.)
  for (const hit of hits) if (hit.rule.path !== 'instance_group[].kind') hit.remove();
}

/** The rules, for the README's compatibility table and tests. */
export const UNSUPPORTED_FIELDS: readonly { path: string; reason: string }[] = RULES.map((r) => ({ path: r.path, reason: r.reason }));
