/**
 * GPU inventory: `nvidia-smi -q -x` → GpuInfo[].
 *
 * How nvidia-smi is run, and why not through node-nvidia-smi's function:
 * node-nvidia-smi@1.0.0 is `exec('nvidia-smi -q -x')` (through a shell, PATH lookup only) and
 * xml2js `{explicitArray: false, trim: true}`. It has no path option, no timeout and gives no
 * handle on the child, so a hung nvidia-smi (it happens when the driver is wedged) could
 * neither be bounded nor killed; it also fails on any stderr output (driver warnings). Using it
 * for the default path only would leave production on the one code path without a timeout and
 * tests on another. So there is one code path for every path: `execFile(path, ['-q', '-x'],
 * {timeout, killSignal: SIGKILL})`, then the very parser and options node-nvidia-smi uses.
 * xml2js is node-nvidia-smi's own dependency, not ours: it is resolved *from node-nvidia-smi's
 * location* (createRequire), so it is found wherever npm installed it (hoisted or nested) for
 * as long as node-nvidia-smi is a dependency, and the output tree is exactly node-nvidia-smi's
 * format. If it ever cannot be loaded, the inventory reports that as its reason.
 */
import { createRequire } from 'node:module';
import type { GpuInfo, GpuInventory } from './schema.js';
import { runNvidiaSmi } from './nvidia-smi.js';
import { parseBytes, parseEnabled, parseInteger, parseNumber, parseString, text } from './units.js';

type XmlNode = Record<string, unknown>;
type ParseString = (xml: string, options: object, cb: (err: Error | null, result: unknown) => void) => void;

let parserCache: { parse: ParseString } | { error: string } | undefined;

function loadXmlParser(): { parse: ParseString } | { error: string } {
  if (parserCache) return parserCache;
  try {
    const here = createRequire(import.meta.url);
    const smiEntry = here.resolve('node-nvidia-smi');
    const xml2js = createRequire(smiEntry)('xml2js') as { parseString: ParseString };
    parserCache = { parse: xml2js.parseString };
  } catch (err) {
    parserCache = { error: `cannot load xml2js (node-nvidia-smi's XML parser): ${(err as Error).message}` };
  }
  return parserCache;
}

/** node-nvidia-smi's parse: xml2js with `{explicitArray: false, trim: true}`. Rejects on bad XML. */
export function parseXml(xml: string): Promise<unknown> {
  const parser = loadXmlParser();
  if ('error' in parser) return Promise.reject(new Error(parser.error));
  return new Promise((resolve, reject) => {
    let settled = false;
    try {
      parser.parse(xml, { explicitArray: false, trim: true }, (err, result) => {
        if (settled) return; // xml2js 0.4 can call back twice on some errors
        settled = true;
        if (err) reject(err);
        else resolve(result);
      });
    } catch (err) {
      if (!settled) {
        settled = true;
        reject(err as Error);
      }
    }
  });
}

function obj(node: unknown): XmlNode | undefined {
  return node && typeof node === 'object' && !Array.isArray(node) ? (node as XmlNode) : undefined;
}

/** xml2js without explicitArray: one child is an object, several an array, none undefined/"". */
export function asArray(node: unknown): XmlNode[] {
  if (Array.isArray(node)) return node.map(obj).filter((n): n is XmlNode => n !== undefined);
  const o = obj(node);
  return o ? [o] : [];
}

/** `get(gpu, 'fb_memory_usage', 'total')`: walks child elements; undefined when any is missing. */
function get(node: unknown, ...keys: string[]): unknown {
  let cur: unknown = node;
  for (const k of keys) {
    const o = obj(cur);
    if (!o) return undefined;
    cur = o[k];
  }
  return cur;
}

/** The first of several element paths that holds a value (element names churn across drivers). */
function first<T>(parse: (v: unknown) => T | null, node: unknown, paths: string[][]): T | null {
  for (const p of paths) {
    const v = parse(get(node, ...p));
    if (v !== null) return v;
  }
  return null;
}

/** One `<gpu>` element → GpuInfo. `index` is its position (nvidia-smi's enumeration order). */
export function normalizeGpu(gpu: XmlNode, index: number): GpuInfo {
  const attrs = obj(gpu['$']);
  const busFromAttr = typeof attrs?.['id'] === 'string' ? (attrs['id'] as string) : undefined;
  const migDevices = get(gpu, 'mig_devices', 'mig_device');
  const migEnabled = parseEnabled(get(gpu, 'mig_mode', 'current_mig'));
  return {
    index,
    uuid: parseString(get(gpu, 'uuid')) ?? '',
    name: parseString(get(gpu, 'product_name')) ?? 'unknown NVIDIA GPU',
    pciBusId: parseString(get(gpu, 'pci', 'pci_bus_id')) ?? busFromAttr ?? '',
    minorNumber: parseInteger(get(gpu, 'minor_number')),
    architecture: parseString(get(gpu, 'product_architecture')),
    memoryTotalBytes: parseBytes(get(gpu, 'fb_memory_usage', 'total')),
    // 5xx drivers: <gpu_power_readings><current_power_limit>; older: <power_readings> with
    // <enforced_power_limit> / <power_limit> (and <current_power_limit> on some in between).
    powerLimitW: first(parseNumber, gpu, [
      ['gpu_power_readings', 'current_power_limit'],
      ['gpu_power_readings', 'enforced_power_limit'],
      ['gpu_power_readings', 'power_limit'],
      ['power_readings', 'current_power_limit'],
      ['power_readings', 'enforced_power_limit'],
      ['power_readings', 'power_limit'],
    ]),
    powerDefaultLimitW: first(parseNumber, gpu, [
      ['gpu_power_readings', 'default_power_limit'],
      ['power_readings', 'default_power_limit'],
    ]),
    computeMode: parseString(get(gpu, 'compute_mode')),
    persistenceMode: parseEnabled(get(gpu, 'persistence_mode')),
    eccEnabled: parseEnabled(get(gpu, 'ecc_mode', 'current_ecc')),
    eccPendingEnabled: parseEnabled(get(gpu, 'ecc_mode', 'pending_ecc')),
    migEnabled,
    migPendingEnabled: parseEnabled(get(gpu, 'mig_mode', 'pending_mig')),
    migDeviceCount: migEnabled ? asArray(migDevices).length : 0,
    maxSmClockMHz: parseNumber(get(gpu, 'max_clocks', 'sm_clock')),
    maxMemClockMHz: parseNumber(get(gpu, 'max_clocks', 'mem_clock')),
  };
}

/** The parsed `nvidia_smi_log` tree (node-nvidia-smi's output) → inventory. Never throws. */
export function normalizeNvidiaSmiLog(tree: unknown): GpuInventory {
  const log = obj(get(tree, 'nvidia_smi_log'));
  if (!log) return { gpus: [], reason: 'nvidia-smi -q -x output has no <nvidia_smi_log> root (not nvidia-smi XML?)' };
  const driverVersion = parseString(log['driver_version']) ?? undefined;
  const cudaVersion = parseString(log['cuda_version']) ?? undefined;
  const gpus = asArray(log['gpu']).map((g, i) => normalizeGpu(g, i));
  const out: GpuInventory = { gpus };
  if (driverVersion) out.driverVersion = driverVersion;
  if (cudaVersion) out.cudaVersion = cudaVersion;
  if (gpus.length === 0) {
    const attached = text(log['attached_gpus']);
    out.reason = `nvidia-smi reports no GPUs (attached_gpus: ${attached ?? 'absent'})`;
  }
  return out;
}

/** XML text → inventory. Never rejects: bad XML is a reason. */
export async function parseNvidiaSmiXml(xml: string): Promise<GpuInventory> {
  if (!xml.trim()) return { gpus: [], reason: 'nvidia-smi -q -x printed nothing' };
  let tree: unknown;
  try {
    tree = await parseXml(xml);
  } catch (err) {
    const msg = (err as Error).message.split('\n')[0];
    return { gpus: [], reason: `nvidia-smi -q -x output is not valid XML: ${msg}` };
  }
  return normalizeNvidiaSmiLog(tree);
}

export interface InventoryOptions {
  nvidiaSmiPath: string;
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
}

/** Runs `nvidia-smi -q -x` and normalizes it. Never rejects; failures are in `reason`. */
export async function queryGpuInventory(opts: InventoryOptions): Promise<GpuInventory> {
  const res = await runNvidiaSmi(opts.nvidiaSmiPath, ['-q', '-x'], { timeoutMs: opts.timeoutMs, ...(opts.env ? { env: opts.env } : {}) });
  if (!res.ok) return { gpus: [], reason: res.reason };
  return parseNvidiaSmiXml(res.stdout);
}
