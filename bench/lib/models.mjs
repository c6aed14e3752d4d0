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
 * mlp_q8       the mlp with the bundled batching but max_queue_size 8 (overload scenario)
 * resnet18     only when bench/setup-peers.sh has exported it (bench/peers/resnet18): torchvision
 *              ResNet-18, random weights, max_batch_size 32, delay 2 ms (peers scenario)
 * All: one instance (instance_group count 1), KIND_CPU, no parameters (agent defaults).
 */
export async function buildRepository(tmp, { queueDelayUs, resnet = true }) {
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
    mlp_q8: { file: 'mlp', config: `name: "mlp_q8"\nmax_batch_size: ${MAX_BATCH}\n${batching(queueDelayUs, 8)}${instance}` },
  };
  const resnetFile = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'peers', 'resnet18', '1', 'model.onnx');
  if (resnet && fs.existsSync(resnetFile)) {
    models.resnet18 = { file: resnetFile, config: `name: "resnet18"\nmax_batch_size: 32\n${batching(2000, 256)}${instance}` };
  }
  const out = {};
  for (const [name, m] of Object.entries(models)) {
    const dir = path.join(repo, name);
    fs.mkdirSync(path.join(dir, '1'), { recursive: true });
    const file = path.join(dir, '1', 'model.onnx');
    fs.copyFileSync(path.isAbsolute(m.file) ? m.file : path.join(gen, m.file, '1', 'model.onnx'), file);
    fs.writeFileSync(path.join(dir, 'config.pbtxt'), `# written by bench/lib/models.mjs\n${m.config}`);
    out[name] = { file, bytes: fs.statSync(file).size, config: m.config };
  }
  return { repo, models: out };
}
