import type { Datatype, TensorData } from '../execution/datatypes.js';

/** A tensor in host memory: what requests decode into and what responses encode from. */
export interface HostTensor {
  readonly name: string;
  readonly datatype: Datatype;
  readonly shape: readonly number[];
  readonly data: TensorData;
  /** BYTES sent as binary: the elements' raw bytes (`data` holds them decoded as UTF-8). */
  readonly raw?: readonly Uint8Array[];
}

/** OIP `$parameters`: string, number or boolean values. */
export type Parameters = Record<string, string | number | boolean>;

export interface RequestedOutput {
  readonly name: string;
  /** Send this output as binary (binary tensor data extension); undefined = follow the request default. */
  readonly binary: boolean | undefined;
  /** Classification extension: return the top k classes as "score:index[:label]" strings. */
  readonly classification?: number;
  /** System shared memory extension: write the output there instead of into the response. */
  readonly shm?: ShmPlace;
}

/** Where in a registered shared memory region a tensor is read from or written to. */
export interface ShmPlace {
  readonly region: string;
  readonly offset: number;
  readonly byteSize: number;
}

/** What decoding needs of the shared memory registry (see shm/): bounded reads. */
export interface ShmReader {
  read(region: string, offset: number, byteSize: number, what: string): Uint8Array;
}

/** A decoded V2 inference request, before it is checked against a model. */
export interface InferRequest {
  readonly id: string | undefined;
  readonly parameters: Parameters;
  readonly inputs: readonly HostTensor[];
  /** undefined = all outputs of the model. */
  readonly outputs: readonly RequestedOutput[] | undefined;
  /** Top-level `binary_data_output`, or true for raw binary requests. */
  readonly binaryOutputDefault: boolean;
  /** Shared memory regions the request reads inputs from or writes outputs to. */
  readonly shmRegions?: readonly string[];
}
