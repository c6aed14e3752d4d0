/**
 * Shared memory extensions. One system shared memory registry per HTTP context (so one per
 * agent, and tests with several agents in one process stay apart), created on first use.
 */
import { binaryOf } from '../protocol/encode-response.js';
import type { ResponseOutput } from '../protocol/encode-response.js';
import type { HostTensor, ShmPlace } from '../protocol/tensor.js';
import { SystemSharedMemory } from './system-shm.js';

export { SystemSharedMemory, SHM_DIR, type RegionStatus } from './system-shm.js';

const registries = new WeakMap<object, SystemSharedMemory>();

export function systemShmFor(owner: object): SystemSharedMemory {
  let r = registries.get(owner);
  if (!r) registries.set(owner, (r = new SystemSharedMemory()));
  return r;
}

/**
 * Write the outputs that asked for shared memory into their regions; the response then
 * carries only where they went and how many bytes they took (BYTES: 4-byte length + bytes each).
 */
export function writeShmOutputs(
  shm: SystemSharedMemory,
  outputs: readonly { readonly tensor: HostTensor; readonly binary: boolean; readonly shm?: ShmPlace | undefined }[],
): ResponseOutput[] {
  return outputs.map((o) => {
    if (!o.shm) return { tensor: o.tensor, binary: o.binary };
    const bytes = binaryOf(o.tensor.datatype, o.tensor.data);
    shm.write(o.shm.region, o.shm.offset, o.shm.byteSize, bytes, `output '${o.tensor.name}'`);
    return { tensor: o.tensor, binary: false, shmWritten: { ...o.shm, written: bytes.length } };
  });
}
