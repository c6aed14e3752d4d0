/**
 * The repository reader on a single-model folder (KServe's /mnt/models when the storageUri
 * holds one model) and on a repository, with real ONNX files from `npm run models`: each
 * accepted layout lists one model with the right name, versions and model file; the
 * ambiguous shapes fail with a message that names the files and the fix.
 */
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../src/repository/model-config.js';
import { ModelRepository } from '../../src/repository/repository.js';
import { detectLayout } from '../../src/repository/single-model.js';

const MLP = path.resolve(import.meta.dirname, '../../models/mlp/1/model.onnx');
const NO_CONFIG = parseModelConfig('(no config)', {});

/** A temp folder named `name` with the given files (path → source file or text). */
function folder(name: string, files: Record<string, { copy: string } | string>): string {
  const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'single-model-')), name);
  mkdirSync(dir);
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(dir, rel);
    mkdirSync(path.dirname(p), { recursive: true });
    if (typeof content === 'string') writeFileSync(p, content);
    else copyFileSync(content.copy, p);
  }
  return dir;
}

describe('single-model folders', () => {
  it('<dir>/model.onnx: one model named after the folder, version 1 is that file', async () => {
    const dir = folder('models', { 'model.onnx': { copy: MLP } });
    const repo = new ModelRepository(dir);
    const list = await repo.list();
    expect(list.map((m) => [m.name, m.versions])).toEqual([['models', [1]]]);
    expect(repo.has('models')).toBe(true);
    expect(repo.has('mlp')).toBe(false);
    const m = (await repo.find('models'))!;
    expect(ModelRepository.modelFile(m, 1, NO_CONFIG)).toBe(path.join(dir, 'model.onnx'));
    expect((await repo.readConfig(m)).source).toBeUndefined();
  });

  it('<dir>/<any>.onnx with a config.pbtxt beside it, named by --model-name', async () => {
    const dir = folder('models', { 'mlp-v3.onnx': { copy: MLP }, 'config.pbtxt': 'name: "mlp"\nmax_batch_size: 8\n' });
    const repo = new ModelRepository(dir, 'mlp');
    const [m] = await repo.list();
    expect(m!.name).toBe('mlp');
    expect(await repo.find('models')).toBeUndefined();
    const { config, source } = await repo.readConfig(m!);
    expect(source).toBe(path.join(dir, 'config.pbtxt'));
    expect(config.max_batch_size).toBe(8);
    // The loose file whatever its name (default_model_filename is for version folders).
    expect(ModelRepository.modelFile(m!, 1, config)).toBe(path.join(dir, 'mlp-v3.onnx'));
  });

  it('<dir>/<version>/model.onnx: the version folders of one model', async () => {
    const dir = folder('mnt', { '1/model.onnx': { copy: MLP }, '3/model.onnx': { copy: MLP }, 'config.pbtxt': 'max_batch_size: 4\n' });
    const repo = new ModelRepository(dir, 'mlp');
    const [m] = await repo.list();
    expect([m!.name, m!.versions, m!.dir]).toEqual(['mlp', [1, 3], dir]);
    const { config } = await repo.readConfig(m!);
    expect(ModelRepository.servedVersions(m!, config)).toEqual([3]);
    expect(ModelRepository.modelFile(m!, 3, config)).toBe(path.join(dir, '3', 'model.onnx'));
  });

  it('a config naming another model than --model-name fails with the fix', async () => {
    const dir = folder('models', { 'model.onnx': { copy: MLP }, 'config.pbtxt': 'name: "other"\n' });
    const repo = new ModelRepository(dir, 'mlp');
    const [m] = await repo.list();
    await expect(repo.readConfig(m!)).rejects.toThrow(/field 'name' is 'other' but the single model .* is served as 'mlp' \(--model-name/);
  });

  it('a folder name that is not a model name asks for --model-name', async () => {
    const dir = folder('my models', { 'model.onnx': { copy: MLP } });
    await expect(new ModelRepository(dir).list()).rejects.toThrow(/'my models' is not a valid model name: set --model-name/);
    expect((await new ModelRepository(dir, 'mlp').list()).map((m) => m.name)).toEqual(['mlp']);
  });
});

describe('repositories and ambiguous folders', () => {
  it('a Triton repository is still a repository (a model named "1" included)', async () => {
    const dir = folder('repo', { 'mlp/1/model.onnx': { copy: MLP }, '1/1/model.onnx': { copy: MLP }, 'mlp/config.pbtxt': 'name: "mlp"\n' });
    expect(detectLayout(dir)).toEqual({ kind: 'repository' });
    const repo = new ModelRepository(dir, 'ignored');
    expect((await repo.list()).map((m) => [m.name, m.versions])).toEqual([['1', [1]], ['mlp', [1]]]);
    expect(repo.has('ignored')).toBe(false);
  });

  it('a repository with a stray .onnx at its top stays a repository (the file is not served)', async () => {
    const dir = folder('repo', { 'stray.onnx': { copy: MLP }, 'a.onnx': { copy: MLP }, 'mlp/1/model.onnx': { copy: MLP } });
    expect(detectLayout(dir)).toEqual({ kind: 'repository' });
    expect((await new ModelRepository(dir).list()).map((m) => m.name)).toEqual(['mlp']);
  });

  it('several .onnx files and no repository layout: a clear error naming them', async () => {
    const dir = folder('models', { 'a.onnx': { copy: MLP }, 'b.onnx': { copy: MLP } });
    const repo = new ModelRepository(dir, 'mlp');
    await expect(repo.list()).rejects.toThrow(/holds several \.onnx files \(a\.onnx, b\.onnx\) and no repository layout: keep one model file there .*<model>\/1\/model\.onnx/);
    await expect(repo.find('mlp')).rejects.toThrow(/several \.onnx files/);
    expect(repo.has('mlp')).toBe(false); // error paths never throw
  });

  it('a loose .onnx beside version folders: a clear error', async () => {
    const dir = folder('models', { 'model.onnx': { copy: MLP }, '1/model.onnx': { copy: MLP } });
    await expect(new ModelRepository(dir).list()).rejects.toThrow(/holds both model\.onnx and version folders \(1\/\)/);
  });
});
