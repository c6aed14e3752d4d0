/**
 * Triton's `sequence_batching` (ModelSequenceBatching) in its JSON form, as config.pbtxt and
 * config.json give it. Field names and enum values follow Triton's model_config.proto; the
 * agent implements all of it except `iterative_sequence`, growable state and
 * `use_same_buffer_for_input_output` (accepted when false), and `direct`'s
 * `minimum_slot_utilization` (accepted, batches form as soon as a slot's chunk is ready).
 */
import { z } from 'zod';
import { TRITON_TYPE_NAMES } from '../execution/datatypes.js';

const int = (min = 0) =>
  z.union([z.number(), z.string().regex(/^-?\d+$/, 'must be an integer')])
    .transform((v) => Number(v))
    .pipe(z.number().int().min(min));

const dataType = z.enum(TRITON_TYPE_NAMES as [string, ...string[]], {
  message: `data_type must be one of ${TRITON_TYPE_NAMES.join(', ')}`,
});

export const CONTROL_KINDS = ['CONTROL_SEQUENCE_START', 'CONTROL_SEQUENCE_READY', 'CONTROL_SEQUENCE_END', 'CONTROL_SEQUENCE_CORRID'] as const;
export type ControlKind = (typeof CONTROL_KINDS)[number];

const pair = <T extends z.ZodType>(t: T) => z.array(t).length(2, 'give two values: [false, true]');

export const ControlSchema = z.object({
  kind: z.enum(CONTROL_KINDS, { message: `kind must be one of ${CONTROL_KINDS.join(', ')}` }),
  int32_false_true: pair(z.number().int()).optional(),
  fp32_false_true: pair(z.number()).optional(),
  bool_false_true: pair(z.boolean()).optional(),
  data_type: dataType.optional(),
}).strict().superRefine((c, ctx) => {
  const forms = [c.int32_false_true, c.fp32_false_true, c.bool_false_true].filter((x) => x !== undefined).length;
  if (c.kind === 'CONTROL_SEQUENCE_CORRID') {
    if (forms) ctx.addIssue({ code: 'custom', message: 'a CONTROL_SEQUENCE_CORRID control takes data_type (TYPE_UINT64, TYPE_INT64, TYPE_UINT32, TYPE_INT32 or TYPE_STRING), not *_false_true' });
    if (!c.data_type) ctx.addIssue({ code: 'custom', path: ['data_type'], message: 'a CONTROL_SEQUENCE_CORRID control needs data_type' });
    else if (!['TYPE_UINT64', 'TYPE_INT64', 'TYPE_UINT32', 'TYPE_INT32', 'TYPE_STRING'].includes(c.data_type)) {
      ctx.addIssue({ code: 'custom', path: ['data_type'], message: `CONTROL_SEQUENCE_CORRID data_type must be TYPE_UINT64, TYPE_INT64, TYPE_UINT32, TYPE_INT32 or TYPE_STRING, got ${c.data_type}` });
    }
  } else if (forms !== 1) {
    ctx.addIssue({ code: 'custom', message: `a ${c.kind} control needs exactly one of int32_false_true, fp32_false_true, bool_false_true` });
  }
});

export const ControlInputSchema = z.object({
  name: z.string().min(1),
  control: z.array(ControlSchema).min(1, 'a control_input needs one control'),
}).strict();

export const InitialStateSchema = z.object({
  data_type: dataType,
  dims: z.array(int()).default([]),
  zero_data: z.boolean().optional(),
  /** A file in the model's `initial_state/` folder: raw row-major bytes of one sequence's state. */
  data_file: z.string().regex(/^[^/\\]+$/, 'a file name in the initial_state/ folder, not a path').optional(),
  name: z.string().optional(),
}).strict().refine((s) => (s.zero_data ? 1 : 0) + (s.data_file !== undefined ? 1 : 0) === 1, 'give one of zero_data: true or data_file');

export const StateSchema = z.object({
  input_name: z.string().min(1),
  output_name: z.string().min(1),
  data_type: dataType,
  dims: z.array(int(1).or(z.literal(-1))).default([]),
  initial_state: z.array(InitialStateSchema).max(1, 'one initial_state per state').default([]),
  use_same_buffer_for_input_output: z.literal(false, { message: 'use_same_buffer_for_input_output is not supported (state lives in host memory between requests); remove it' }).optional(),
  use_growable_memory: z.literal(false, { message: 'growable state is not supported; give the state fixed dims' }).optional(),
}).strict();

export const StrategyDirectSchema = z.object({
  max_queue_delay_microseconds: int().default(0),
  minimum_slot_utilization: z.number().min(0).max(1).default(0),
}).strict();

export const StrategyOldestSchema = z.object({
  max_candidate_sequences: int(1).default(1),
  preferred_batch_size: z.array(int(1)).default([]),
  max_queue_delay_microseconds: int().default(0),
  preserve_ordering: z.boolean().default(false),
}).strict();

export const SequenceBatchingSchema = z.object({
  direct: StrategyDirectSchema.optional(),
  oldest: StrategyOldestSchema.optional(),
  max_sequence_idle_microseconds: int().default(1_000_000),
  control_input: z.array(ControlInputSchema).default([]),
  state: z.array(StateSchema).default([]),
  iterative_sequence: z.literal(false, { message: 'iterative sequences are not supported; remove iterative_sequence' }).optional(),
}).strict().refine((s) => !(s.direct && s.oldest), 'give one strategy: direct or oldest');

export type SequenceBatchingConfig = z.output<typeof SequenceBatchingSchema>;
