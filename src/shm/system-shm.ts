/**
 * Triton's system shared memory extension: clients register a POSIX shared memory object
 * (`shm_open` name, i.e. the file /dev/shm/<key>) as a named region (offset, byte_size), then
 * send inputs and receive outputs through it instead of the request body.
 *
 * Contracts:
 * - A region is opened at registration and its file descriptor kept until unregistration, so
 *   the object stays the same one even if the client unlinks or recreates the name meanwhile
 *   (the same guarantee as Triton's mmap).
 * - Every read and write is bounds-checked against the *region* (offset .. offset+byte_size),
 *   never just the object: nothing is written outside it.
 * - A region used by a running request cannot be unregistered (400 naming it); the request
 *   holds it from decoding to the write of its outputs.
 * - Every bad case is an INVALID_ARGUMENT (400) naming the region and the reason.
 * Node has no mmap: reads and writes are pread/pwrite on the descriptor (one copy each way).
 */
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import path from 'node:path';
import { invalid } from '../errors.js';

export interface RegionStatus {
  readonly name: string;
  readonly key: string;
  readonly offset: number;
  readonly byte_size: number;
}

interface Region extends RegionStatus {
  readonly fd: number;
  /** Requests that hold the region right now. */
  inUse: number;
}

/** Where POSIX shared memory objects live on Linux (shm_open's namespace). */
export const SHM_DIR = '/dev/shm';

/** A shm_open name: an optional leading '/', then one path component (no '/', no '..'). */
function objectPath(key: string, dir: string): string {
  const name = key.startsWith('/') ? key.slice(1) : key;
  if (!name || name.includes('/') || name === '.' || name === '..' || name.includes('\0') || name.length > 255) {
    throw invalid(`shared memory key '${key}' is not a shared memory object name: write it as shm_open takes it ('/name', no other '/')`);
  }
  return path.join(dir, name);
}

function nonNegativeInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw invalid(`${what} must be a non-negative integer`);
  return v;
}

export class SystemSharedMemory {
  private readonly regions = new Map<string, Region>();

  constructor(private readonly dir: string = SHM_DIR) {}

  register(name: string, body: { key?: unknown; offset?: unknown; byte_size?: unknown }): void {
    if (typeof body.key !== 'string') throw invalid(`register of region '${name}': 'key' (the shared memory object name) must be a string`);
    const offset = nonNegativeInt(body.offset ?? 0, `register of region '${name}': 'offset'`);
    const byteSize = nonNegativeInt(body.byte_size, `register of region '${name}': 'byte_size'`);
    if (this.regions.has(name)) {
      throw invalid(`shared memory region '${name}' is already registered; unregister it first`);
    }
    const file = objectPath(body.key, this.dir);
    let fd: number;
    try {
      fd = openSync(file, 'r+');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw invalid(`shared memory region '${name}': cannot open the object '${body.key}' (${code === 'ENOENT' ? `no such object in ${this.dir}; create it with shm_open first` : code ?? String(err)})`);
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw invalid(`shared memory region '${name}': '${body.key}' is not a shared memory object`);
      if (offset + byteSize > st.size) {
        throw invalid(`shared memory region '${name}': offset ${offset} + byte_size ${byteSize} is past the end of '${body.key}' (${st.size} bytes)`);
      }
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    this.regions.set(name, { name, key: body.key, offset, byte_size: byteSize, fd, inUse: 0 });
  }

  /** Unregister one region, or every region when `name` is undefined. */
  unregister(name?: string): void {
    const targets = name === undefined ? [...this.regions.values()] : [this.get(name)];
    const busy = targets.filter((r) => r.inUse > 0);
    if (busy.length) {
      throw invalid(`shared memory region${busy.length > 1 ? 's' : ''} ${busy.map((r) => `'${r.name}'`).join(', ')} ${busy.length > 1 ? 'are' : 'is'} in use by a running request; unregister after it completes`);
    }
    for (const r of targets) {
      this.regions.delete(r.name);
      closeSync(r.fd);
    }
  }

  status(name?: string): RegionStatus[] {
    const list = name === undefined ? [...this.regions.values()] : [this.get(name)];
    return list.map(({ name: n, key, offset, byte_size }) => ({ name: n, key, offset, byte_size }));
  }

  /** Hold a region for the duration of a request (see `release`). */
  acquire(name: string): void {
    this.get(name).inUse++;
  }

  release(name: string): void {
    const r = this.regions.get(name);
    if (r && r.inUse > 0) r.inUse--;
  }

  /** `byteSize` bytes at `offset` within the region. */
  read(name: string, offset: number, byteSize: number, what: string): Uint8Array {
    const r = this.get(name);
    this.check(r, offset, byteSize, what);
    const buf = new Uint8Array(byteSize);
    let done = 0;
    while (done < byteSize) {
      const n = readSync(r.fd, buf, done, byteSize - done, r.offset + offset + done);
      if (n === 0) throw invalid(`${what}: shared memory region '${name}' ended early (the object shrank after registration)`);
      done += n;
    }
    return buf;
  }

  /** Write `bytes` at `offset` within the region, when they fit in `byteSize` (the client's space). */
  write(name: string, offset: number, byteSize: number, bytes: Uint8Array, what: string): void {
    const r = this.get(name);
    this.check(r, offset, byteSize, what);
    if (bytes.length > byteSize) {
      throw invalid(`${what} has ${bytes.length} bytes but shared_memory_byte_size is ${byteSize}; give it more space`);
    }
    let done = 0;
    while (done < bytes.length) done += writeSync(r.fd, bytes, done, bytes.length - done, r.offset + offset + done);
  }

  /** Close every descriptor (server shutdown). */
  closeAll(): void {
    for (const r of this.regions.values()) closeSync(r.fd);
    this.regions.clear();
  }

  private get(name: string): Region {
    const r = this.regions.get(name);
    if (!r) throw invalid(`Unable to find system shared memory region: '${name}' (register it with POST /v2/systemsharedmemory/region/${name}/register)`);
    return r;
  }

  private check(r: Region, offset: number, byteSize: number, what: string): void {
    if (offset + byteSize > r.byte_size) {
      throw invalid(`${what}: shared_memory_offset ${offset} + shared_memory_byte_size ${byteSize} is past the end of region '${r.name}' (${r.byte_size} bytes)`);
    }
  }
}
