/**
 * The sequence parameters of an inference request (`sequence_id`, `sequence_start`,
 * `sequence_end`), read from the decoded request's parameters: the HTTP JSON header (JSON and
 * binary requests) today, and any other transport that puts its request parameters in the same
 * `Parameters` record (gRPC's InferParameter map) without further work.
 */
import { invalid } from '../errors.js';
import type { Parameters } from '../protocol/tensor.js';

export interface SequenceParams {
  /** An unsigned integer or a string (Triton's correlation id); 0 and "" mean none. */
  readonly id: number | string;
  readonly start: boolean;
  readonly end: boolean;
}

function flag(params: Parameters, key: string): boolean {
  const v = params[key];
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw invalid(`request parameter '${key}' must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

/** The request's sequence parameters, or undefined when it names no sequence. */
export function sequenceParams(params: Parameters): SequenceParams | undefined {
  const id = params.sequence_id;
  const start = flag(params, 'sequence_start');
  const end = flag(params, 'sequence_end');
  if (id === undefined || id === 0 || id === '') {
    if (start || end) throw invalid("request parameters 'sequence_start'/'sequence_end' need a 'sequence_id' (a non-zero unsigned integer or a non-empty string)");
    return undefined;
  }
  if (typeof id === 'string') return { id, start, end };
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) {
    throw invalid(`request parameter 'sequence_id' must be a non-zero unsigned integer or a non-empty string, got ${JSON.stringify(id)}`);
  }
  return { id, start, end };
}

/** One key per sequence: integer and string ids are distinct (as in Triton). */
export function sequenceKey(id: number | string): string {
  return typeof id === 'number' ? `#${id}` : `"${id}`;
}

export function sequenceText(id: number | string): string {
  return typeof id === 'number' ? String(id) : JSON.stringify(id);
}
