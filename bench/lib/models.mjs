// The benchmark's model repository, generated into a temporary folder: the ONNX files come from
// scripts/generate-models.mjs (seeded, byte-for-byte reproducible); the configs are written here.
import fs from 'node:fs';
import path from 'node:path';
import { generateBundledModels, generateComputeModel } from '../../scripts/generate-models.mjs';

export const MAX_BATCH = 64;

/**
 * add_sub      FP32 [-1,16] x2, the bundled config (dynamic batching, no delay, queue 1024)
 * mlp_nobatch  the bundled mlp ([-1,256], 3 layers), max_batch_size 64, no dynamic_batching block:
 *              every request runs alone
 * mlp_batch    the same file, the bundled mlp's batching: delay `queueDelayUs` (bundled: 500), queue 2048
 * mlp_heavy    [-1,1024], 20 layers (generateComputeModel), batching as mlp_batch
 * All: one instance (instance_group count 1), KIND_CPU, no parameters (agent defaults).
 */
export async function buildRepository(tmp, { queueDelayUs }) {
  const gen = path.join(tmp, 'generated');
  const repo = path.join(tmp, 'models');
  await generateBundledModels(gen);
  await generateComputeModel(gen);
  const batching = (delay, queue) =>
    `dynamic_batching {\n  max_queue_delay_microseconds: ${delay}\n  default_queue_policy { max_queue_size: ${queue} }\n}\n`;
  const instance = 'instance_group [ { count: 1, kind: KIND_CPU } ]\n';
  const models = {
    add_sub: { file: 'add_sub', config: `name: "add_sub"\nmax_batch_size: ${MAX_BATCH}\n${batching(0, 1024)}${instance}` },
    mlp_nobatch: { file: 'mlp', config: `name: "mlp_nobatch"\nmax_batch_size: ${MAX_BATCH}\n${instance}` },
    mlp_batch: { file: 'mlp', config: `name: "mlp_batch"\nmax_batch_size: ${MAX_BATCH}\n${batching(queueDelayUs, 2048)}${instance}` },
    mlp_heavy: { file: 'mlp_heavy', config: `name: "mlp_heavy"\nmax_batch_size: ${MAX_BATCH}\n${batching(queueDelayUs, 2048)}${instance}` },
  };
  const out = {};
  for (const [name, m] of Object.entries(models)) {
    const dir = path.join(repo, name);
    fs.mkdirSync(path.join(dir, '1'), { recursive: true });
    const file = path.join(dir, '1', 'model.onnx');
    fs.copyFileSync(path.join(gen, m.file, '1', 'model.onnx'), file);
    fs.writeFileSync(path.join(dir, 'config.pbtxt'), `# written by bench/lib/models.mjs\n${m.config}`);
    out[name] = { file, bytes: fs.statSync(file).size, config: m.config };
  }
  return { repo, models: out };
}
