/**
 * What the config asks about *where* a model runs (instance_group kind, Triton's
 * optimization.execution_accelerators and optimization.cuda) against what onnxruntime-node
 * 1.29 gave it. Nothing here refuses a model except KIND_GPU under --strict-gpu: a config
 * written for Triton loads, and every request we could not honour is said in one warning
 * that names the setting and the provider actually used (index, metadata, logs).
 *
 * The mapping, for onnxruntime-node 1.29:
 * - KIND_GPU → the CUDA provider first (providers cuda, then the agent's fallbacks);
 *   KIND_CPU → cpu only; KIND_AUTO → the agent's --providers order. `gpus: [n]` picks the
 *   CUDA device (the first listed; one device per model).
 * - gpu_execution_accelerator "cuda" is the CUDA provider itself; "tensorrt" has no provider
 *   in the npm build of onnxruntime-node, so the model runs on CUDA (or the CPU) instead.
 * - cpu_execution_accelerator "openvino" / "dnnl": not in the npm build; the default CPU
 *   provider runs the model.
 * - optimization.cuda (graphs, busy_wait_events, output_copy_stream, graph_spec): Triton
 *   honours them for TensorRT only; onnxruntime-node's binding passes nothing but the device
 *   id to the CUDA provider, so they are ignored.
 */
import type { ProviderFailure, ProviderName } from '../execution/ort-session.js';
import type { ModelConfig } from './model-config.js';

export interface Placement {
  readonly provider: ProviderName;
  readonly fallbacks: readonly ProviderFailure[];
}

/** Warnings for settings not honoured as written; `strictGpu` makes a KIND_GPU fallback an error. */
export function placementWarnings(config: ModelConfig, placed: Placement, strictGpu: boolean): string[] {
  const out: string[] = [];
  const used = placed.provider;
  const gpuGroup = config.instance_group?.find((g) => g.kind === 'KIND_GPU');
  if (gpuGroup && used !== 'cuda') {
    const cause = placed.fallbacks.find((f) => f.provider === 'cuda')?.error ?? 'the CUDA provider was not tried';
    const text = `instance_group asks for KIND_GPU but no usable GPU runs this model (${cause})`;
    if (strictGpu) throw new Error(`${text}; --strict-gpu refuses to fall back (drop --strict-gpu or use KIND_CPU)`);
    out.push(`${text}; running on ${used} (the agent's provider fallback; start with --strict-gpu to refuse instead)`);
  }
  const acc = config.optimization?.execution_accelerators;
  for (const a of acc?.gpu_execution_accelerator ?? []) {
    const name = a.name.toLowerCase();
    if (name === 'cuda' && used === 'cuda') continue;
    out.push(`optimization.execution_accelerators: gpu accelerator '${a.name}' is not available in onnxruntime-node 1.29 here` +
      `${name === 'tensorrt' ? ' (its npm build has no TensorRT provider)' : ''}; the model runs on ${used}`);
  }
  for (const a of acc?.cpu_execution_accelerator ?? []) {
    out.push(`optimization.execution_accelerators: cpu accelerator '${a.name}' is not available in onnxruntime-node 1.29 here; the model runs on ${used}`);
  }
  const cuda = config.optimization?.cuda;
  if (cuda) {
    const set = (['graphs', 'busy_wait_events', 'output_copy_stream'] as const).filter((k) => cuda[k] === true);
    if (cuda.graph_spec?.length) set.push('graph_spec' as never);
    if (set.length) {
      out.push(`optimization.cuda ${set.join(', ')}: not passed to onnxruntime-node 1.29 (its CUDA provider takes only the device id; Triton uses these for TensorRT only); ignored, the model runs on ${used}`);
    }
  }
  return out;
}
