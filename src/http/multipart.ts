/**
 * The one part of a multipart/form-data body that a predict request needs: the uploaded file
 * (the first part with a filename, else a part named image or file). Enough for
 * `curl -F image=@page.png`; not a general multipart parser.
 */
import { invalid } from '../errors.js';

export function boundaryOf(contentType: string): string {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  const b = m?.[1] ?? m?.[2];
  if (!b) throw invalid('multipart/form-data without a boundary parameter');
  return b;
}

export function uploadedFile(body: Buffer, contentType: string): Buffer {
  const delimiter = Buffer.from(`--${boundaryOf(contentType)}`);
  const parts: Buffer[] = [];
  let start = body.indexOf(delimiter);
  while (start >= 0) {
    const next = body.indexOf(delimiter, start + delimiter.length);
    if (next < 0) break;
    // Between "--boundary\r\n" and the "\r\n" before the next delimiter.
    parts.push(body.subarray(start + delimiter.length + 2, next - 2));
    start = next;
  }
  let fallback: Buffer | undefined;
  for (const part of parts) {
    const headerEnd = part.indexOf('\r\n\r\n');
    if (headerEnd < 0) continue;
    const headers = part.subarray(0, headerEnd).toString('latin1');
    const content = part.subarray(headerEnd + 4);
    const disposition = /content-disposition:[^\r\n]*/i.exec(headers)?.[0] ?? '';
    if (/filename="/i.test(disposition)) return content;
    if (/name="(image|file)"/i.test(disposition)) fallback ??= content;
  }
  if (fallback) return fallback;
  throw invalid('the multipart body has no file part (send -F image=@file.png)');
}
