/**
 * The model lifecycle: which versions of which repository models are loaded, in which state
 * (Triton's LOADING, READY, UNLOADING, UNAVAILABLE with a reason), and the way requests find
 * a ready version. A model that fails to load affects nothing else. Loads and unloads of one
 * model are serialised; a reload brings the new version up before the old one goes.
 */
import { AgentError, messageOf } from '../errors.js';
import type { ModelSession, ProviderFailure, SessionFactory, SessionSettings } from '../execution/ort-session.js';
import { ModelRepository, type RepositoryModel } from '../repository/repository.js';
import { parseModelConfig, type ModelConfig } from '../repository/model-config.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { completeModelSpec, sessionSettingsFor, type ModelDefaults } from './model-spec.js';
import { ServedModel } from './served-model.js';

export type ModelState = 'LOADING' | 'READY' | 'UNLOADING' | 'UNAVAILABLE';

export interface VersionStatus {
  readonly version: number;
  state: ModelState;
  reason: string;
  model: ServedModel | undefined;
}

export interface IndexEntry {
  readonly name: string;
  readonly version?: string;
  readonly state?: ModelState;
  readonly reason?: string;
}

interface ModelEntry {
  readonly versions: Map<number, VersionStatus>;
  /** Reason the model as a whole could not load (bad config, no versions). */
  failure: string | undefined;
  /** Tail of the chain that serialises load/unload of this model. */
  lock: Promise<unknown>;
}

export interface ModelManagerDeps {
  readonly repository: ModelRepository;
  readonly sessionFactory: SessionFactory;
  readonly defaults: ModelDefaults;
  readonly clock: Clock;
  readonly logger: Logger;
}

export class ModelManager {
  private readonly models = new Map<string, ModelEntry>();
  private closed = false;

  constructor(private readonly deps: ModelManagerDeps) {}

  /** Load the named models (or all, for '*'), at most 4 at a time; failures are recorded, not thrown. */
  async loadAtStartup(names: readonly string[]): Promise<void> {
    const all = names.includes('*') ? (await this.deps.repository.list()).map((m) => m.name) : [...names];
    let next = 0;
    const worker = async () => {
      while (next < all.length) {
        const name = all[next++]!;
        await this.load(name).catch(() => undefined);
      }
    };
    await Promise.all(Array.from({ length: Math.min(4, all.length) }, worker));
  }

  /** Load (or reload) a model; resolves when its served versions are READY, rejects with why not. */
  load(name: string, configOverride?: unknown): Promise<void> {
    if (this.closed) return Promise.reject(new AgentError('UNAVAILABLE', 'the agent is shutting down'));
    return this.serialised(name, () => this.doLoad(name, configOverride));
  }

  /** Unload every version of a model, after its queued and running requests finish. */
  unload(name: string): Promise<void> {
    return this.serialised(name, () => this.doUnload(name));
  }

  /** The READY served model for a request, or an error saying why there is none. */
  resolve(name: string, version?: string): ServedModel {
    const entry = this.models.get(name);
    if (!entry) {
      if (this.deps.repository.has(name)) {
        throw new AgentError('UNAVAILABLE', `model '${name}' is not loaded; load it with POST /v2/repository/models/${name}/load`, { retryAfterSeconds: 1 });
      }
      throw new AgentError('NOT_FOUND', `unknown model '${name}': it is not in the model repository`);
    }
    if (version !== undefined) {
      if (!/^\d+$/.test(version)) throw new AgentError('NOT_FOUND', `model '${name}' has no version '${version}' (versions are numbers)`);
      const v = entry.versions.get(Number(version));
      if (!v) throw new AgentError('NOT_FOUND', `model '${name}' has no loaded version ${version}; served: ${this.versionList(entry) || 'none'}`);
      return this.readyOrThrow(name, v);
    }
    const ready = [...entry.versions.values()].filter((v) => v.state === 'READY').sort((a, b) => b.version - a.version)[0];
    if (ready) return ready.model!;
    const latest = [...entry.versions.values()].sort((a, b) => b.version - a.version)[0];
    if (latest) return this.readyOrThrow(name, latest);
    throw new AgentError('UNAVAILABLE', `model '${name}' is not available: ${entry.failure ?? 'not loaded'}`, { retryAfterSeconds: 1 });
  }

  private readyOrThrow(name: string, v: VersionStatus): ServedModel {
    if (v.state === 'READY' && v.model) return v.model;
    const why = v.state === 'UNAVAILABLE' ? `UNAVAILABLE: ${v.reason}` : v.state;
    throw new AgentError('UNAVAILABLE', `model '${name}' version ${v.version} is not ready (${why})`, { retryAfterSeconds: 1 });
  }

  /** Status of one model's versions, or undefined if it was never loaded. */
  status(name: string): { versions: VersionStatus[]; failure: string | undefined } | undefined {
    const e = this.models.get(name);
    return e && { versions: [...e.versions.values()].sort((a, b) => a.version - b.version), failure: e.failure };
  }

  /** Every model of the repository, with the state of each loaded version (Triton's index). */
  async index(readyOnly = false): Promise<IndexEntry[]> {
    const out: IndexEntry[] = [];
    const names = new Set((await this.deps.repository.list()).map((m) => m.name));
    for (const n of this.models.keys()) names.add(n);
    for (const name of [...names].sort()) {
      const e = this.models.get(name);
      const versions = e ? [...e.versions.values()].sort((a, b) => a.version - b.version) : [];
      if (versions.length === 0) {
        if (!readyOnly) out.push(e?.failure ? { name, state: 'UNAVAILABLE', reason: e.failure } : { name });
        continue;
      }
      for (const v of versions) {
        if (readyOnly && v.state !== 'READY') continue;
        out.push({ name, version: String(v.version), state: v.state, reason: v.reason });
      }
    }
    return out;
  }

  /** Every READY served model. */
  ready(): ServedModel[] {
    const out: ServedModel[] = [];
    for (const e of this.models.values()) for (const v of e.versions.values()) if (v.state === 'READY' && v.model) out.push(v.model);
    return out;
  }

  /** Unload everything after in-flight work finishes. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.models.keys()].map((n) => this.unload(n).catch(() => undefined)));
  }

  /** Reject queued work everywhere and free all sessions. */
  async destroy(err: Error): Promise<void> {
    this.closed = true;
    const all = [...this.models.values()].flatMap((e) => [...e.versions.values()]);
    await Promise.all(all.map((v) => v.model?.destroy(err)));
    for (const v of all) {
      v.state = 'UNAVAILABLE';
      v.reason = 'agent stopped';
      v.model = undefined;
    }
  }

  private versionList(entry: ModelEntry): string {
    return [...entry.versions.keys()].sort((a, b) => a - b).join(', ');
  }

  private entry(name: string): ModelEntry {
    let e = this.models.get(name);
    if (!e) this.models.set(name, (e = { versions: new Map(), failure: undefined, lock: Promise.resolve() }));
    return e;
  }

  private serialised<T>(name: string, op: () => Promise<T>): Promise<T> {
    const e = this.entry(name);
    const run = e.lock.then(op, op);
    e.lock = run.catch(() => undefined);
    return run;
  }

  private async readConfig(model: RepositoryModel, override: unknown): Promise<{ config: ModelConfig; source: string }> {
    if (override !== undefined) {
      const source = `load request config for '${model.name}'`;
      const config = parseModelConfig(source, override);
      if (config.name !== undefined && config.name !== model.name) {
        throw new AgentError('INVALID_ARGUMENT', `${source}: field 'name' is '${config.name}'; it must be '${model.name}' or absent`);
      }
      return { config, source };
    }
    const { config, source } = await this.deps.repository.readConfig(model);
    return { config, source: source ?? `model '${model.name}' (no config file; completed from the ONNX model)` };
  }

  private async doLoad(name: string, configOverride: unknown): Promise<void> {
    const { logger } = this.deps;
    const model = await this.deps.repository.find(name);
    const entry = this.entry(name);
    if (!model) {
      if (entry.versions.size === 0) this.models.delete(name);
      throw new AgentError('NOT_FOUND', `model '${name}' is not in the model repository ${this.deps.repository.root}`);
    }
    let config: ModelConfig;
    let source: string;
    let session: SessionSettings;
    try {
      ({ config, source } = await this.readConfig(model, configOverride));
      session = sessionSettingsFor(config, this.deps.defaults.session, source);
    } catch (err) {
      entry.failure = messageOf(err);
      logger.error({ model: name, err: entry.failure }, 'model config is invalid');
      throw err instanceof AgentError ? err : new AgentError('INVALID_ARGUMENT', entry.failure);
    }
    const wanted = ModelRepository.servedVersions(model, config);
    if (wanted.length === 0) {
      entry.failure = `no version folder with a model file matches the version policy (found versions: ${model.versions.join(', ') || 'none'})`;
      throw new AgentError('INVALID_ARGUMENT', `failed to load '${name}': ${entry.failure}`);
    }
    entry.failure = undefined;
    const failures: string[] = [];
    await Promise.all(
      wanted.map(async (version) => {
        try {
          await this.loadVersion(entry, model, version, config, source, session);
        } catch (err) {
          failures.push(`version ${version}: ${messageOf(err)}`);
        }
      }),
    );
    // Versions no longer in the policy go after the new ones are up.
    for (const [v, status] of entry.versions) {
      if (!wanted.includes(v)) await this.unloadVersion(name, entry, status);
    }
    if (failures.length) throw new AgentError('INVALID_ARGUMENT', `failed to load '${name}': ${failures.join('; ')}`);
  }

  private async loadVersion(
    entry: ModelEntry,
    model: RepositoryModel,
    version: number,
    config: ModelConfig,
    source: string,
    session: SessionSettings,
  ): Promise<void> {
    const { logger, clock, sessionFactory, defaults } = this.deps;
    const previous = entry.versions.get(version);
    // A reload keeps serving the old version until the new one is READY.
    const reloading = previous?.state === 'READY' ? previous.model : undefined;
    if (!reloading) entry.versions.set(version, { version, state: 'LOADING', reason: '', model: undefined });
    const started = clock.now();
    const file = ModelRepository.modelFile(model, version, config);
    logger.info({ model: model.name, version, file, providers: session.providers }, 'loading model');
    const sessions: ModelSession[] = [];
    try {
      const instances = config.instance_group?.reduce((n, g) => n + g.count, 0) || 1;
      let fallbacks: readonly ProviderFailure[] = [];
      for (let i = 0; i < instances; i++) {
        const created = await sessionFactory.create(file, session);
        sessions.push(created.session);
        if (i === 0) fallbacks = created.fallbacks;
      }
      for (const f of fallbacks) {
        logger.warn({ model: model.name, version, provider: f.provider, cause: f.error }, `execution provider '${f.provider}' unavailable; falling back`);
      }
      const spec = completeModelSpec(model.name, version, config, sessions[0]!, session, defaults, source);
      const served = new ServedModel({ spec, sessions, fallbacks, clock });
      await served.warmUp();
      served.loadMs = clock.now() - started;
      entry.versions.set(version, { version, state: 'READY', reason: '', model: served });
      logger.info(
        { model: model.name, version, provider: served.provider, instances, maxBatchSize: spec.maxBatchSize, loadMs: Math.round(served.loadMs) },
        `model ready on ${served.provider}`,
      );
      if (reloading) await reloading.close();
    } catch (err) {
      await Promise.allSettled(sessions.map((s) => s.release()));
      const reason = messageOf(err);
      logger.error({ model: model.name, version, err: reason }, 'model failed to load');
      if (!reloading) entry.versions.set(version, { version, state: 'UNAVAILABLE', reason, model: undefined });
      throw err;
    }
  }

  private async doUnload(name: string): Promise<void> {
    const entry = this.models.get(name);
    if (!entry || entry.versions.size === 0) {
      if (!(await this.deps.repository.find(name))) throw new AgentError('NOT_FOUND', `unknown model '${name}'`);
      return;
    }
    await Promise.all([...entry.versions.values()].map((v) => this.unloadVersion(name, entry, v)));
  }

  private async unloadVersion(name: string, entry: ModelEntry, status: VersionStatus): Promise<void> {
    const model = status.model;
    if (!model) {
      entry.versions.delete(status.version);
      return;
    }
    status.state = 'UNLOADING';
    this.deps.logger.info({ model: name, version: status.version, queued: model.queued, executing: model.executing }, 'unloading model');
    await model.close();
    status.model = undefined;
    status.state = 'UNAVAILABLE';
    status.reason = 'unloaded';
    this.deps.logger.info({ model: name, version: status.version }, 'model unloaded');
  }
}
