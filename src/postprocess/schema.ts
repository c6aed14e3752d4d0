/**
 * Declared postprocessing of a model output, next to the output in `config.json`:
 *
 *   "postprocess": { "type": "classification", "labels_file": "labels.txt", "top_k": 1, "apply_softmax": false }
 *   "postprocess": { "type": "ctc", "dict_file": "ppocr_keys_v1.txt" }
 *   "postprocess": { "type": "none" }
 *
 * Files are relative to the model's folder (next to config.json), like Triton's label_filename.
 */
import { z } from 'zod';
import { formatIssues, strictObject } from '../util/zod-issues.js';

const fileName = (field: string) =>
  z.string({ error: `${field} must be a file name relative to the model folder, e.g. "labels.txt"` })
    .min(1, { error: `${field} must not be empty` })
    .refine((f) => !f.startsWith('/') && !f.split(/[\\/]/).includes('..'), {
      error: `${field} must stay inside the model folder: no absolute path, no '..'`,
    });

export const ClassificationPostprocessSchema = strictObject({
  type: z.literal('classification'),
  /** One label per line, line i = class i. */
  labels_file: fileName('postprocess.labels_file').optional(),
  top_k: z.number({ error: 'postprocess.top_k must be an integer ≥ 1, e.g. 5' }).int({ error: 'postprocess.top_k must be an integer' })
    .min(1, { error: 'postprocess.top_k must be at least 1' }).default(1),
  /** true when the model outputs logits; false when it already ends in a softmax. */
  apply_softmax: z.boolean({ error: 'postprocess.apply_softmax must be true or false' }).default(false),
}, "postprocess type 'classification'");

export const CtcPostprocessSchema = strictObject({
  type: z.literal('ctc'),
  /** One character per line (PaddleOCR's ppocr_keys_v1.txt); class i is line i-1, class 0 the blank. */
  dict_file: fileName('postprocess.dict_file'),
  /** Index of the blank class (PaddleOCR: 0). */
  blank_index: z.literal(0, { error: 'postprocess.blank_index must be 0 (PaddleOCR); other layouts are not supported' }).default(0),
}, "postprocess type 'ctc'");

export const NoPostprocessSchema = strictObject({ type: z.literal('none') }, "postprocess type 'none'");

export const POSTPROCESS_TYPES = ['classification', 'ctc', 'none'] as const;

export const PostprocessSchema = z.discriminatedUnion('type', [ClassificationPostprocessSchema, CtcPostprocessSchema, NoPostprocessSchema], {
  error: (iss) =>
    iss.code === 'invalid_union'
      ? `postprocess.type must be one of ${POSTPROCESS_TYPES.map((t) => `'${t}'`).join(', ')}`
      : iss.code === 'invalid_type' ? 'postprocess must be an object such as {"type": "classification", "top_k": 5}' : undefined,
});

export type PostprocessInput = z.input<typeof PostprocessSchema>;
export type Postprocess = z.output<typeof PostprocessSchema>;
export type ClassificationPostprocess = z.output<typeof ClassificationPostprocessSchema>;
export type CtcPostprocess = z.output<typeof CtcPostprocessSchema>;

/** `source: field 'a.b': message` lines of a zod error. */
export const formatPostprocessIssues = formatIssues;

export function parsePostprocess(source: string, raw: unknown): Postprocess {
  const r = PostprocessSchema.safeParse(raw);
  if (!r.success) throw new Error(formatPostprocessIssues(source, r.error));
  return r.data;
}
