/**
 * The model repository on disk, in Triton's layout:
 *   <root>/<model>/[config.pbtxt | config.json]
 *   <root>/<model>/<version>/model.onnx        (numeric version folders)
 * or, when the root itself is one model (KServe's /mnt/models for a single-model storageUri:
 * <root>/model.onnx or <root>/<version>/model.onnx, see single-model.ts), that one model, named
 * by --model-name or else the folder's name.
 * The folder is read on every call (it is small), so models added after start-up can be
 * loaded through the API. Only names found here can ever be loaded: requests and
 * coordinator commands name models, never paths.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseModelConfig, type ModelConfig } from './model-config.js';
import { parsePbtxtConfig } from './pbtxt-config.js';
import { detectLayout } from './single-model.js';

export const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export interface RepositoryModel {
  readonly name: string;
  readonly dir: string;
  /** Numeric version folders, ascending. */
  readonly versions: readonly number[];
  /** A single-model folder's loose model file, served as version 1 whatever its name. */
  readonly file?: string;
}

export interface LoadedConfig {
  readonly config: ModelConfig;
  /** The file it came from, or undefined when the model has none (auto-completed). */
  readonly source: string | undefined;
}

export class ModelRepository {
  /** singleModelName: the name a single-model root is served as (--model-name); unused for a repository. */
  constructor(readonly root: string, readonly singleModelName?: string) {}

  /** The root as one model, or undefined when it is a repository; throws on an ambiguous folder. */
  single(): RepositoryModel | undefined {
    const layout = detectLayout(this.root);
    if (layout.kind === 'repository') return undefined;
    const name = this.singleModelName ?? path.basename(this.root);
    if (!MODEL_NAME.test(name)) {
      throw new Error(`${this.root} holds a single model, but its folder name '${name}' is not a valid model name: set --model-name (GPU_AGENT_MODEL_NAME)`);
    }
    return { name, dir: this.root, versions: layout.versions, ...(layout.file ? { file: layout.file } : {}) };
  }

  async list(): Promise<RepositoryModel[]> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch (err) {
      throw new Error(`cannot read the model repository ${this.root}: ${(err as Error).message} (set --models to a folder of models)`);
    }
    const one = this.single();
    if (one) return [one];
    const models = await Promise.all(names.filter((n) => MODEL_NAME.test(n)).sort().map((n) => this.find(n)));
    return models.filter((m): m is RepositoryModel => m !== undefined);
  }

  /** Cheap synchronous check, for error paths: does the repository have a folder of that name? */
  has(name: string): boolean {
    if (!MODEL_NAME.test(name)) return false;
    try {
      const one = this.single();
      if (one) return one.name === name;
      // A folder, as find() requires: a plain file of that name is not a model.
      return statSync(path.join(this.root, name)).isDirectory();
    } catch {
      return false;
    }
  }

  async find(name: string): Promise<RepositoryModel | undefined> {
    if (!MODEL_NAME.test(name)) return undefined;
    const one = this.single();
    if (one) return one.name === name ? one : undefined;
    const dir = path.join(this.root, name);
    try {
      if (!(await stat(dir)).isDirectory()) return undefined;
      // '7' and '007' are the same version: the first folder found of it wins.
      const versions = [...new Set((await readdir(dir, { withFileTypes: true }))
        .filter((e) => e.isDirectory() && /^\d+$/.test(e.name) && Number(e.name) > 0)
        .map((e) => Number(e.name)))]
        .sort((a, b) => a - b);
      return { name, dir, versions };
    } catch {
      return undefined;
    }
  }

  /** The model's config file, parsed and validated; `{}` when it has none. */
  async readConfig(model: RepositoryModel): Promise<LoadedConfig> {
    const pbtxt = path.join(model.dir, 'config.pbtxt');
    const json = path.join(model.dir, 'config.json');
    const hasPbtxt = existsSync(pbtxt);
    const hasJson = existsSync(json);
    if (hasPbtxt && hasJson) {
      throw new Error(`${model.dir} has both config.pbtxt and config.json; keep one of them`);
    }
    let config: ModelConfig;
    if (hasPbtxt) {
      config = parsePbtxtConfig(pbtxt, await readFile(pbtxt, 'utf8'));
    } else if (hasJson) {
      let raw: unknown;
      try {
        raw = JSON.parse(await readFile(json, 'utf8'));
      } catch (err) {
        throw new Error(`${json}: not valid JSON: ${(err as Error).message}`);
      }
      config = parseModelConfig(json, raw);
    } else {
      return { config: parseModelConfig('(no config)', {}), source: undefined };
    }
    const source = hasPbtxt ? pbtxt : json;
    if (config.name !== undefined && config.name !== model.name) {
      const servedAs = model.dir === this.root ? `the single model in ${this.root} is served as '${model.name}' (--model-name, else the folder's name)` : `the model folder is '${model.name}'`;
      throw new Error(`${source}: field 'name' is '${config.name}' but ${servedAs}; make them equal or remove 'name'`);
    }
    return { config, source };
  }

  /** The versions a config's version_policy serves (Triton's default: the latest one). */
  static servedVersions(model: RepositoryModel, config: ModelConfig): number[] {
    const policy = config.version_policy;
    if (!policy || 'latest' in policy) {
      const n = policy && 'latest' in policy ? policy.latest.num_versions : 1;
      return model.versions.slice(-n);
    }
    if ('all' in policy) return [...model.versions];
    return policy.specific.versions.filter((v) => model.versions.includes(v));
  }

  /**
   * Where the model file should be, when it is not there: ONNX files straight in the model
   * folder (no version folder) or a version folder holding a file of another name.
   */
  static placementHint(model: RepositoryModel, config: ModelConfig, version?: number): string | undefined {
    const wanted = config.default_model_filename ?? 'model.onnx';
    const onnx = (dir: string) => {
      try {
        return readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort();
      } catch {
        return [];
      }
    };
    if (version === undefined) {
      const loose = onnx(model.dir);
      if (loose.length) return `${model.name}/${loose[0]} is not in a version folder; put it at ${model.name}/1/${wanted}`;
      return `put the model at ${model.name}/1/${wanted}`;
    }
    const others = onnx(path.join(model.dir, String(version))).filter((f) => f !== wanted);
    if (others.length) {
      return `${model.name}/${version}/ has ${others.join(', ')}; name it ${wanted} or set default_model_filename: "${others[0]}" in the config`;
    }
    return `put the model at ${model.name}/${version}/${wanted}`;
  }

  static modelFile(model: RepositoryModel, version: number, config: ModelConfig): string {
    if (model.file !== undefined && version === 1) return model.file;
    return path.join(model.dir, String(version), config.default_model_filename ?? 'model.onnx');
  }
}
