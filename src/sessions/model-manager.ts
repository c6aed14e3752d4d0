/**
 * The model lifecycle and the warm pool: which versions of which repository models are
 * loaded, in which state (Triton's LOADING, READY, UNLOADING, UNAVAILABLE with a reason), how
 * requests find a ready version, and how loaded models share each device's memory budget.
 *
 * Contracts:
 * - A model that fails to load affects nothing else.
 * - Loads and unloads of one model are serialised; a reload brings the new version up before
 *   the old one goes.
 * - Session creation and warm-up of different models are serialised too, so the process's
 *   memory growth across them can be attributed to the model being loaded.
 * - Eviction (LRU, to fit the budget) and idle unloading never touch a preloaded model or one
 *   with queued or running requests.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { loadDictionary } from '../postprocess/dictionary.js';
import { ServedPipeline } from '../pipeline/served-pipeline.js';
import { createDecodeQueue, type DecodeQueue } from '../preprocess/image.js';
import type { HostTensor } from '../protocol/tensor.js';
import { prepareRequest } from '../protocol/validate-request.js';
import { AgentError, messageOf, TRITON_MESSAGES } from '../errors.js';
import { cudaProviderMissing, type ModelSession, type ProviderFailure, type SessionFactory, type SessionSettings } from '../execution/ort-session.js';
import { parseModelConfig, type ModelConfig } from '../repository/model-config.js';
import { ModelRepository, type RepositoryModel } from '../repository/repository.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { idleEntries, mib, planEviction, type PoolEntry } from './eviction.js';
import { budgetFor, type Device, type MemoryProbe } from './memory.js';
import { completeModelSpec, instanceCount, sessionSettingsFor, type ModelDefaults, type ModelSpec } from './model-spec.js';
import { ServedModel } from './served-model.js';
import { planWarmup } from './warmup.js';
import { loadInitialStates } from '../sequences/spec.js';
import { placementWarnings } from '../repository/placement.js';
import { releaseAfterUnload } from '../memory/allocator.js';

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
  /** Loads triggered by a request (lazy loading). */
  coldStarts: number;
  evictions: number;
  /** Bytes the last load of this model took: the estimate for its next load. */
  lastBytes: number | undefined;
  /** The config as last read (before completion from the model file): what a failed load shows. */
  lastConfig: ModelConfig | undefined;
}

export interface PoolSettings {
  /** Bytes per device, or 'auto' = 90% of the device's memory. */
  readonly memoryBudget: number | 'auto';
  /** Never evicted nor unloaded when idle. */
  readonly preload: readonly string[];
  /** Load a repository model on its first request (only when the API may load models). */
  readonly lazyLoad: boolean;
  /** Unload models idle this long; 0 = never. */
  readonly idleUnloadMs: number;
}

export interface ModelManagerDeps {
  readonly repository: ModelRepository;
  readonly sessionFactory: SessionFactory;
  readonly defaults: ModelDefaults;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly memory: MemoryProbe;
  readonly pool: PoolSettings;
  /** Called where a batch of a model completes (metrics). */
  readonly onBatch?: (model: string, version: number, rows: number) => void;
  /** Called where a request of a model succeeds, with its duration (latency histogram). */
  readonly onRequest?: (model: string, version: number, ms: number) => void;
  /** What pipelines decode images with (see pipeline/). */
  readonly images?: { readonly queue: DecodeQueue; readonly maxPixels: number };
  /** Called on every state change of a model version (coordinator events). */
  readonly onStateChange?: (change: StateChange) => void;
}

export interface StateChange {
  readonly model: string;
  readonly version: number;
  readonly state: ModelState;
  readonly reason: string;
  readonly provider?: string | undefined;
}

/** Labels and character dictionaries named by the outputs' postprocessing, from the model folder. */
async function loadDictionaries(model: RepositoryModel, spec: ModelSpec): Promise<Map<string, readonly string[]>> {
  const out = new Map<string, readonly string[]>();
  for (const o of spec.outputs) {
    const pp = o.postprocess;
    const file = pp?.type === 'classification' ? pp.labels_file : pp?.type === 'ctc' ? pp.dict_file : o.labelFilename;
    if (!file) continue;
    try {
      out.set(o.name, await loadDictionary(path.join(model.dir, file)));
    } catch (err) {
      throw new Error(`output '${o.name}' ${pp ? 'postprocess file' : 'label_filename'} ${file} in ${model.dir}: ${messageOf(err)}`);
    }
  }
  return out;
}

/** Why a version went away, as the index shows it. */
const UNLOADED = 'unloaded';

export class ModelManager {
  private readonly models = new Map<string, ModelEntry>();
  private readonly lazyLoads = new Map<string, Promise<void>>();
  private readonly pipelines = new Map<string, ServedPipeline>();
  /** Loads in progress (start, API, lazy, reload): a request for a LOADING model waits for them. */
  private readonly pendingLoads = new Map<string, Promise<void>>();
  /** The models --load-models/--preload name, once the startup list is known (strict readiness). */
  private startupNames: readonly string[] | undefined;
  /** Tail of the chain that serialises session creation + warm-up across models. */
  private measureLock: Promise<unknown> = Promise.resolve();
  private cancelSweep: (() => void) | undefined;
  private closed = false;

  constructor(private readonly deps: ModelManagerDeps) {}

  /** Start the idle sweep (when --idle-unload-seconds is set). */
  startIdleSweep(): void {
    const ttl = this.deps.pool.idleUnloadMs;
    if (ttl <= 0 || this.cancelSweep) return;
    const every = Math.max(50, Math.min(ttl / 2, 10_000));
    const tick = () => {
      this.cancelSweep = this.deps.clock.setTimer(every, () => {
        void this.unloadIdle().finally(() => !this.closed && tick());
      });
    };
    tick();
  }

  /** Load the named models (or all, for '*'); failures are recorded, not thrown. */
  async loadAtStartup(names: readonly string[]): Promise<void> {
    const listed = names.includes('*') ? (await this.deps.repository.list()).map((m) => m.name) : [...names];
    // Preloaded models first: they are pinned, so the budget is spent on them before the rest.
    const all = [...new Set([...this.deps.pool.preload, ...listed])];
    this.startupNames = all;
    await Promise.all(all.map((name) => this.load(name).catch(() => undefined)));
  }

  /** Load (or reload) a model; resolves when its served versions are READY, rejects with why not. */
  load(name: string, configOverride?: unknown): Promise<void> {
    if (this.closed) return Promise.reject(new AgentError('UNAVAILABLE', 'the agent is shutting down'));
    const run = this.serialised(name, () => this.doLoad(name, configOverride));
    const tracked = run.catch(() => undefined).finally(() => {
      if (this.pendingLoads.get(name) === tracked) this.pendingLoads.delete(name);
    });
    this.pendingLoads.set(name, tracked);
    return run;
  }

  /** Resolves once no load of `name` is in progress (never rejects). */
  async loadsSettled(name: string): Promise<void> {
    for (let p = this.pendingLoads.get(name); p; p = this.pendingLoads.get(name)) await p;
  }

  /**
   * Strict readiness (Triton's): every model --load-models/--preload named is READY (a
   * pipeline: loaded). `pending` lists the others with their state.
   */
  startupReadiness(): { ready: boolean; pending: string[] } {
    if (!this.startupNames) return { ready: false, pending: ['(the startup list is being read)'] };
    const pending: string[] = [];
    for (const name of this.startupNames) {
      if (this.pipelines.has(name)) continue;
      const e = this.models.get(name);
      const versions = e ? [...e.versions.values()] : [];
      if (versions.some((v) => v.state === 'READY')) continue;
      pending.push(`${name}: ${e?.failure ? `UNAVAILABLE: ${e.failure}` : versions.map((v) => (v.reason ? `${v.state}: ${v.reason}` : v.state)).join(', ') || 'LOADING'}`);
    }
    return { ready: pending.length === 0, pending };
  }

  /** The pipeline of that name, once any load of it in progress has finished. */
  async pipelineWhenLoaded(name: string): Promise<ServedPipeline | undefined> {
    if (this.pendingLoads.has(name)) await this.loadsSettled(name);
    return this.pipelines.get(name);
  }

  /** Unload every version of a model, after its queued and running requests finish. */
  unload(name: string, reason = UNLOADED): Promise<void> {
    return this.serialised(name, () => this.doUnload(name, reason));
  }

  /**
   * The READY served model for an inference request. With lazy loading, a repository model
   * that is not loaded (never, or unloaded/evicted since) is loaded first: a cold start.
   */
  async acquire(name: string, version?: string): Promise<ServedModel> {
    try {
      return this.resolve(name, version);
    } catch (err) {
      // LOADING (at start, a reload, another request's lazy load): wait for it, then answer.
      if (this.pendingLoads.has(name)) {
        await this.loadsSettled(name);
        return this.acquire(name, version);
      }
      if (!this.shouldLazyLoad(name)) throw err;
    }
    let pending = this.lazyLoads.get(name);
    if (!pending) {
      const entry = this.entry(name);
      entry.coldStarts++;
      this.deps.logger.info({ model: name, coldStarts: entry.coldStarts }, 'cold start: loading model for a request');
      pending = this.load(name).finally(() => this.lazyLoads.delete(name));
      this.lazyLoads.set(name, pending);
    }
    try {
      await pending;
    } catch (err) {
      throw new AgentError('UNAVAILABLE', `model '${name}' could not be loaded for this request: ${messageOf(err)}`, { retryAfterSeconds: 5 });
    }
    return this.resolve(name, version);
  }

  private shouldLazyLoad(name: string): boolean {
    if (!this.deps.pool.lazyLoad || this.closed || !this.deps.repository.has(name)) return false;
    const entry = this.models.get(name);
    if (!entry) return true;
    if (entry.failure) return false; // a broken config fails every request the same way; no reload storm
    const versions = [...entry.versions.values()];
    // Only models that went away on purpose are brought back; a failed load stays failed.
    return versions.every((v) => v.state === 'UNAVAILABLE' && v.reason.startsWith(UNLOADED)) ;
  }

  /** The pipeline of that name, when one is loaded. */
  pipeline(name: string): ServedPipeline | undefined {
    return this.pipelines.get(name);
  }

  /** Every loaded pipeline. */
  allPipelines(): ServedPipeline[] {
    return [...this.pipelines.values()];
  }

  /** The READY served model for a request, or an error saying why there is none. */
  resolve(name: string, version?: string): ServedModel {
    const entry = this.models.get(name);
    if (!entry || (entry.versions.size === 0 && !entry.failure)) {
      if (this.deps.repository.has(name)) {
        throw new AgentError('UNAVAILABLE', TRITON_MESSAGES.noAvailableVersions(name, `model '${name}' is not loaded; load it with POST /v2/repository/models/${name}/load`), { retryAfterSeconds: 1 });
      }
      throw new AgentError('NOT_FOUND', TRITON_MESSAGES.unknownModel(name, `unknown model '${name}': it is not in the model repository`));
    }
    if (version !== undefined) {
      if (!/^\d+$/.test(version)) throw new AgentError('NOT_FOUND', TRITON_MESSAGES.unknownVersion(name, version, `model '${name}' has no version '${version}'; versions are numbers`));
      const v = entry.versions.get(Number(version));
      if (!v) throw new AgentError('NOT_FOUND', TRITON_MESSAGES.unknownVersion(name, version, `model '${name}' has no loaded version ${version}; served: ${this.versionList(entry) || 'none'}`));
      return this.readyOrThrow(name, v);
    }
    // The highest READY version (every request comes through here: one pass, no arrays).
    let ready: VersionStatus | undefined;
    let latest: VersionStatus | undefined;
    for (const v of entry.versions.values()) {
      if (v.state === 'READY' && (!ready || v.version > ready.version)) ready = v;
      if (!latest || v.version > latest.version) latest = v;
    }
    if (ready) return ready.model!;
    if (latest) return this.readyOrThrow(name, latest);
    throw new AgentError('UNAVAILABLE', TRITON_MESSAGES.noAvailableVersions(name, `model '${name}' is not available: ${entry.failure ?? 'not loaded'}`), { retryAfterSeconds: 1 });
  }

  private readyOrThrow(name: string, v: VersionStatus): ServedModel {
    if (v.state === 'READY' && v.model) return v.model;
    const why = v.state === 'UNAVAILABLE' ? `UNAVAILABLE: ${v.reason}` : v.state;
    throw new AgentError('UNAVAILABLE', TRITON_MESSAGES.versionNotReady(name, v.version, `model '${name}' version ${v.version} is not ready (${why})`), { retryAfterSeconds: 1 });
  }

  /**
   * The config `GET /v2/models/{m}/config` shows: the completed one of the READY version
   * asked for; else, when the load failed after the config was read, that config as read
   * (so a user sees what was understood); else the reason there is none.
   */
  config(name: string, version?: string): { config: ModelConfig; served: ServedModel | undefined } {
    try {
      const served = this.resolve(name, version);
      return { config: served.spec.config, served };
    } catch (err) {
      const last = this.models.get(name)?.lastConfig;
      if (last && !(err instanceof AgentError && err.code === 'NOT_FOUND' && version !== undefined)) {
        return { config: { ...last, name }, served: undefined };
      }
      throw err;
    }
  }

  /** Whether the model was ever loaded (what `status(name) !== undefined` says, without building it). */
  known(name: string): boolean {
    return this.models.has(name);
  }

  /**
   * The READY served model for a request when one is there now (no load pending, nothing lazy
   * to do), else undefined: the caller then takes the full path of `acquire`.
   */
  readyNow(name: string, version?: string): ServedModel | undefined {
    if (this.pendingLoads.has(name)) return undefined;
    try {
      return this.resolve(name, version);
    } catch {
      return undefined;
    }
  }

  /** Status of one model's versions and counters, or undefined if it was never loaded. */
  status(name: string): { versions: VersionStatus[]; failure: string | undefined; coldStarts: number; evictions: number } | undefined {
    const e = this.models.get(name);
    return e && {
      versions: [...e.versions.values()].sort((a, b) => a.version - b.version),
      failure: e.failure,
      coldStarts: e.coldStarts,
      evictions: e.evictions,
    };
  }

  /** Every model of the repository, with the state of each loaded version (Triton's index). */
  async index(readyOnly = false): Promise<IndexEntry[]> {
    const out: IndexEntry[] = [];
    const names = new Set((await this.deps.repository.list()).map((m) => m.name));
    for (const [n, e] of this.models) if (e.versions.size || e.failure) names.add(n);
    for (const name of [...names].sort()) {
      const e = this.models.get(name);
      if (this.pipelines.has(name)) {
        out.push({ name, version: '1', state: 'READY', reason: '' });
        continue;
      }
      const versions = e ? [...e.versions.values()].sort((a, b) => a.version - b.version) : [];
      if (versions.length === 0) {
        if (!readyOnly) out.push(e?.failure ? { name, state: 'UNAVAILABLE', reason: e.failure } : { name });
        continue;
      }
      for (const v of versions) {
        if (readyOnly && v.state !== 'READY') continue;
        // A READY model's reason carries its warnings (e.g. a failed automatic warm-up).
        const reason = v.state === 'READY' && v.model?.warnings.length ? v.model.warnings.join('; ') : v.reason;
        out.push({ name, version: String(v.version), state: v.state, reason });
      }
    }
    return out;
  }

  /**
   * State of every version the manager tracks, read from memory (no repository scan): for
   * /metrics. A model that failed as a whole (bad config, no version) is one UNAVAILABLE entry
   * without a version.
   */
  versionStates(): { name: string; version: number | undefined; state: ModelState }[] {
    const out: { name: string; version: number | undefined; state: ModelState }[] = [];
    for (const [name, e] of this.models) {
      for (const v of e.versions.values()) out.push({ name, version: v.version, state: v.state });
      if (e.versions.size === 0 && e.failure) out.push({ name, version: undefined, state: 'UNAVAILABLE' });
    }
    return out;
  }

  /** Every READY served model. */
  ready(): ServedModel[] {
    const out: ServedModel[] = [];
    for (const e of this.models.values()) for (const v of e.versions.values()) if (v.state === 'READY' && v.model) out.push(v.model);
    return out;
  }

  /** Budget and use of each device that has models or a known size. */
  memoryReport(): { device: Device; budgetBytes: number; usedBytes: number }[] {
    return (['gpu', 'host'] as const)
      .map((device) => ({
        device,
        budgetBytes: budgetFor(device, this.deps.pool.memoryBudget, this.deps.memory),
        usedBytes: this.loaded(device).reduce((n, m) => n + m.memory.bytes, 0),
      }))
      .filter((r) => r.usedBytes > 0 || Number.isFinite(r.budgetBytes));
  }

  /** Resolves once no model has queued or running requests. */
  async whenIdle(): Promise<void> {
    while (this.ready().some((m) => m.busy)) await Promise.all(this.ready().map((m) => m.whenIdle()));
  }

  /** End the idle live sequences of every sequence model (after a drain); how many ended. */
  endSequences(why: string): number {
    return this.ready().reduce((n, m) => n + (m.sequences?.endIdleSequences(why) ?? 0), 0);
  }

  /** Unload everything after in-flight work finishes. */
  async close(): Promise<void> {
    this.closed = true;
    this.cancelSweep?.();
    await Promise.all([...this.models.keys()].map((n) => this.unload(n).catch(() => undefined)));
  }

  /** Reject queued work everywhere and free all sessions. */
  async destroy(err: Error): Promise<void> {
    this.closed = true;
    this.cancelSweep?.();
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
    if (!e) {
      e = { versions: new Map(), failure: undefined, lock: Promise.resolve(), coldStarts: 0, evictions: 0, lastBytes: undefined, lastConfig: undefined };
      this.models.set(name, e);
    }
    return e;
  }

  private serialised<T>(name: string, op: () => Promise<T>): Promise<T> {
    const e = this.entry(name);
    const run = e.lock.then(op, op);
    e.lock = run.catch(() => undefined);
    return run;
  }

  private measured<T>(op: () => Promise<T>): Promise<T> {
    const run = this.measureLock.then(op, op);
    this.measureLock = run.catch(() => undefined);
    return run;
  }

  /** READY models on a device. */
  private loaded(device: Device): ServedModel[] {
    return this.ready().filter((m) => m.memory.device === device);
  }

  /** The pool of a device as the eviction policy sees it: one entry per model. */
  private poolOf(device: Device, except: string): PoolEntry[] {
    const byName = new Map<string, { bytes: number; lastUsed: number; busy: boolean }>();
    for (const m of this.loaded(device)) {
      if (m.spec.name === except) continue;
      const e = byName.get(m.spec.name) ?? { bytes: 0, lastUsed: 0, busy: false };
      byName.set(m.spec.name, { bytes: e.bytes + m.memory.bytes, lastUsed: Math.max(e.lastUsed, m.lastUsed), busy: e.busy || m.busy || m.holdsSequences });
    }
    return [...byName].map(([key, e]) => ({ key, ...e, pinned: this.deps.pool.preload.includes(key) }));
  }

  /** Evict least-recently-used models until `needed` bytes fit on `device`, or throw why not. */
  private async makeRoom(device: Device, needed: number, forModel: string): Promise<void> {
    const budget = budgetFor(device, this.deps.pool.memoryBudget, this.deps.memory);
    const plan = planEviction(this.poolOf(device, forModel), needed, budget);
    if (!plan.ok) throw new AgentError('UNAVAILABLE', `model '${forModel}' does not fit in the ${device} memory budget: ${plan.reason}`);
    for (const victim of plan.evict) {
      this.deps.logger.warn({ model: victim, device, for: forModel, needed, budget }, 'evicting least recently used model to fit the memory budget');
      this.entry(victim).evictions++;
      // Not serialised on the victim's lock: its lock may be held by a load waiting on us.
      const entry = this.models.get(victim);
      if (entry) await Promise.all([...entry.versions.values()].map((v) => this.unloadVersion(victim, entry, v, `${UNLOADED} (evicted: least recently used, to fit '${forModel}' in the ${device} memory budget)`)));
    }
    if (plan.evict.length) releaseAfterUnload(this.deps.logger);
  }

  private async unloadIdle(): Promise<void> {
    const now = this.deps.clock.now();
    const ttl = this.deps.pool.idleUnloadMs;
    for (const device of ['gpu', 'host'] as const) {
      for (const name of idleEntries(this.poolOf(device, ''), now, ttl)) {
        this.deps.logger.info({ model: name, idleSeconds: ttl / 1000 }, 'unloading idle model');
        await this.unload(name, `${UNLOADED} (idle for ${Math.round(ttl / 1000)} s)`).catch(() => undefined);
      }
    }
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
      throw new AgentError('NOT_FOUND', TRITON_MESSAGES.failedToLoad(name, `model '${name}' is not in the model repository ${this.deps.repository.root}`));
    }
    let config: ModelConfig;
    let source: string;
    let session: SessionSettings;
    try {
      entry.lastConfig = undefined;
      ({ config, source } = await this.readConfig(model, configOverride));
      entry.lastConfig = config;
      session = sessionSettingsFor(config, this.deps.defaults.session, source);
    } catch (err) {
      entry.failure = messageOf(err);
      logger.error({ model: name, err: entry.failure }, 'model config is invalid');
      throw new AgentError(err instanceof AgentError ? err.code : 'INVALID_ARGUMENT', TRITON_MESSAGES.failedToLoad(name, entry.failure));
    }
    if (config.platform === 'ocr_pipeline') return this.loadPipeline(entry, model, config, source);
    const wanted = ModelRepository.servedVersions(model, config);
    if (wanted.length === 0) {
      entry.failure = `no version folder with a model file matches the version policy (found versions: ${model.versions.join(', ') || 'none'}); ${ModelRepository.placementHint(model, config)}`;
      throw new AgentError('INVALID_ARGUMENT', TRITON_MESSAGES.failedToLoad(name, entry.failure));
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
    // Versions no longer in the policy go after the new ones are up — and only then: when a new
    // version fails, the old one keeps serving (a pulled N+1 that cannot load leaves N up).
    for (const [v, status] of entry.versions) {
      if (!wanted.includes(v) && (failures.length === 0 || status.state !== 'READY')) await this.unloadVersion(name, entry, status, UNLOADED);
    }
    if (failures.length) {
      const budget = failures.every((f) => f.includes('memory budget'));
      throw new AgentError(budget ? 'UNAVAILABLE' : 'INVALID_ARGUMENT', TRITON_MESSAGES.failedToLoad(name, failures.join('; ')));
    }
  }

  /** Run one stage of a pipeline on a model, through its batcher (lazy loading it if allowed). */
  private readonly runStage = async (model: string, input: HostTensor): Promise<HostTensor[]> => {
    const served = await this.acquire(model);
    const prepared = prepareRequest({ id: undefined, parameters: {}, inputs: [input], outputs: undefined, binaryOutputDefault: false }, served.spec);
    return [...(await served.infer(prepared)).values()];
  };

  private async loadPipeline(entry: ModelEntry, model: RepositoryModel, config: ModelConfig, source: string): Promise<void> {
    try {
      const ocr = config.ocr!;
      const stages = [ocr.detection.model, ...(ocr.direction.enabled ? [ocr.direction.model] : []), ocr.recognition.model];
      for (const stage of stages) {
        if (!this.deps.repository.has(stage)) throw new Error(`${source}: stage model '${stage}' is not in the model repository`);
      }
      // The recognition model's character dictionary: its ctc postprocess file, else PaddleOCR's name.
      const rec = (await this.deps.repository.find(ocr.recognition.model))!;
      const recConfig = (await this.deps.repository.readConfig(rec)).config;
      const ctc = recConfig.output?.map((o) => o.postprocess).find((p) => p?.type === 'ctc');
      const dictFile = path.join(rec.dir, ctc?.type === 'ctc' ? ctc.dict_file : 'ppocr_keys_v1.txt');
      const dictionary = await loadDictionary(dictFile).catch((err: unknown) => {
        throw new Error(`${source}: the recognition dictionary ${dictFile} cannot be read: ${messageOf(err)}`);
      });
      const images = this.deps.images ?? { queue: createDecodeQueue(4), maxPixels: 40_000_000 };
      this.pipelines.set(model.name, new ServedPipeline(model.name, ocr, { runModel: this.runStage, dictionary, decodeQueue: images.queue, maxPixels: images.maxPixels }));
      entry.failure = undefined;
      this.notify(model.name, { version: 1, state: 'READY', reason: '', model: undefined });
      this.deps.logger.info({ model: model.name, stages }, 'pipeline ready');
    } catch (err) {
      this.pipelines.delete(model.name);
      entry.failure = messageOf(err);
      this.deps.logger.error({ model: model.name, err: entry.failure }, 'pipeline failed to load');
      throw new AgentError('INVALID_ARGUMENT', TRITON_MESSAGES.failedToLoad(model.name, entry.failure));
    }
  }

  /** Where a model will most likely run, to make room before loading it. */
  private predictDevice(session: SessionSettings): Device {
    const wantsGpu = session.providers[0] === 'cuda' && cudaProviderMissing() === undefined;
    return wantsGpu && this.deps.memory.totalBytes('gpu') !== undefined ? 'gpu' : 'host';
  }

  private async loadVersion(
    entry: ModelEntry,
    model: RepositoryModel,
    version: number,
    config: ModelConfig,
    source: string,
    session: SessionSettings,
  ): Promise<void> {
    const { logger, clock, sessionFactory, defaults, memory } = this.deps;
    const previous = entry.versions.get(version);
    // A reload keeps serving the old version until the new one is READY.
    const reloading = previous?.state === 'READY' ? previous.model : undefined;
    if (!reloading) this.setVersion(model.name, entry, { version, state: 'LOADING', reason: '', model: undefined });
    const started = clock.now();
    const file = ModelRepository.modelFile(model, version, config);
    const instances = instanceCount(config);
    const sessions: ModelSession[] = [];
    try {
      const fileBytes = statSync(file, { throwIfNoEntry: false })?.size ?? 0;
      if (fileBytes === 0) throw new Error(`model file ${file} is missing or empty; ${ModelRepository.placementHint(model, config, version)}`);
      const estimate = entry.lastBytes ?? fileBytes * instances;
      await this.makeRoom(this.predictDevice(session), estimate, model.name);
      logger.info({ model: model.name, version, file, providers: session.providers }, 'loading model');

      const served = await this.measured(async () => {
        const hostBefore = await memory.processUsedBytes('host');
        const gpuBefore = await memory.processUsedBytes('gpu');
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
        loadInitialStates(spec.sequence, model.dir);
        const dictionaries = await loadDictionaries(model, spec);
        const onBatch = this.deps.onBatch;
        const onRequest = this.deps.onRequest;
        const m = new ServedModel({
          spec, sessions, fallbacks, clock, dictionaries,
          onBatch: onBatch && ((rows) => onBatch(model.name, version, rows)),
          onRequest: onRequest && ((ms) => onRequest(model.name, version, ms)),
          stats: reloading?.stats,
        });
        m.warnings.push(...placementWarnings(config, m, defaults.strictGpu ?? false));
        await m.warmUp(await planWarmup(spec, model.dir));
        for (const w of m.warnings) logger.warn({ model: model.name, version }, w);
        for (const n of m.notes) logger.info({ model: model.name, version }, n);
        const device: Device = m.provider === 'cuda' ? 'gpu' : 'host';
        const before = device === 'gpu' ? gpuBefore : hostBefore;
        const after = await memory.processUsedBytes(device);
        const measuredBytes = before !== undefined && after !== undefined ? Math.max(0, after - before) : undefined;
        m.memory = { device, measuredBytes, fileBytes: fileBytes * instances, bytes: Math.max(measuredBytes ?? 0, fileBytes * instances) };
        return m;
      });
      served.loadMs = clock.now() - started;
      entry.lastBytes = served.memory.bytes;
      // The measurement may exceed the estimate: enforce the budget with the real figure.
      await this.makeRoom(served.memory.device, served.memory.bytes, model.name);
      this.setVersion(model.name, entry, { version, state: 'READY', reason: '', model: served });
      logger.info(
        {
          model: model.name, version, provider: served.provider, instances, maxBatchSize: served.spec.maxBatchSize,
          loadMs: Math.round(served.loadMs), memory: mib(served.memory.bytes), measured: served.memory.measuredBytes !== undefined,
        },
        `model ready on ${served.provider}`,
      );
      if (reloading) {
        await reloading.close();
        releaseAfterUnload(this.deps.logger);
      }
    } catch (err) {
      await Promise.allSettled(sessions.map((s) => s.release()));
      releaseAfterUnload(this.deps.logger);
      const reason = messageOf(err);
      logger.error({ model: model.name, version, err: reason }, 'model failed to load');
      if (!reloading) this.setVersion(model.name, entry, { version, state: 'UNAVAILABLE', reason, model: undefined });
      throw err;
    }
  }

  private setVersion(name: string, entry: ModelEntry, status: VersionStatus): void {
    entry.versions.set(status.version, status);
    this.notify(name, status);
  }

  private notify(name: string, status: VersionStatus): void {
    try {
      this.deps.onStateChange?.({ model: name, version: status.version, state: status.state, reason: status.reason, provider: status.model?.provider });
    } catch (err) {
      this.deps.logger.warn({ err: messageOf(err) }, 'state change listener failed');
    }
  }

  private async doUnload(name: string, reason: string): Promise<void> {
    if (this.pipelines.delete(name)) {
      this.notify(name, { version: 1, state: 'UNAVAILABLE', reason, model: undefined });
      return;
    }
    const entry = this.models.get(name);
    if (!entry || entry.versions.size === 0) {
      if (!(await this.deps.repository.find(name))) throw new AgentError('NOT_FOUND', TRITON_MESSAGES.failedToUnload(name, `unknown model '${name}': it is not in the model repository`));
      return;
    }
    await Promise.all([...entry.versions.values()].map((v) => this.unloadVersion(name, entry, v, reason)));
    // The sessions are released: hand what they freed inside malloc back to the OS (memory/allocator.ts).
    releaseAfterUnload(this.deps.logger);
  }

  private async unloadVersion(name: string, entry: ModelEntry, status: VersionStatus, reason: string): Promise<void> {
    const model = status.model;
    if (!model) {
      if (status.state !== 'LOADING') entry.versions.delete(status.version);
      return;
    }
    status.state = 'UNLOADING';
    this.notify(name, status);
    this.deps.logger.info({ model: name, version: status.version, queued: model.queued, executing: model.executing, reason }, 'unloading model');
    await model.close();
    if (entry.versions.get(status.version) !== status) return; // a reload replaced it meanwhile
    status.model = undefined;
    status.state = 'UNAVAILABLE';
    status.reason = reason;
    this.notify(name, status);
    this.deps.logger.info({ model: name, version: status.version, reason }, 'model unloaded');
  }
}
