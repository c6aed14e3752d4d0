/**
 * Shared zod helpers for the config schemas, so every config error reads the same way:
 * `source: field 'a.b[0]': message`, and an unknown field lists the fields that exist.
 */
import { z } from 'zod';

/** `resize.pad_color[1]` from a zod issue path; '(root)' for the object itself. */
export function issuePath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
}

/** `source: field 'path': message` lines of a zod error, joined with '; '. */
export function formatIssues(source: string, error: z.ZodError): string {
  return error.issues.map((i) => `${source}: field '${issuePath(i.path)}': ${i.message}`).join('; ');
}

/** A strict object whose unknown-field error names `what` and lists its fields. */
export function strictObject<T extends z.ZodRawShape>(shape: T, what: string) {
  const fields = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (iss) =>
      iss.code === 'unrecognized_keys'
        ? `unknown field${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => `'${k}'`).join(', ')} in ${what}; its fields are: ${fields}`
        : undefined,
  });
}
