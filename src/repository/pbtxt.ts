/**
 * Parser for the protobuf text format as written in Triton `config.pbtxt` files.
 *
 * Contract:
 * - `parsePbtxt(text)` returns the top-level message. Every field maps to the LIST of its
 *   values in source order (`dims: [1, 2]` and `dims: 1 dims: 2` both give `dims: [1, 2]`;
 *   `dims: []` gives `dims: []`), so the caller decides what is repeated. No schema is used.
 * - Scalars: quoted strings -> `string` (adjacent literals concatenated, C escapes decoded as
 *   UTF-8 bytes), numbers (decimal, float, hex `0x10`, octal `010`, `f` suffix) -> `number`,
 *   `true/True/t` and `false/False/f` -> `boolean`, any other bare identifier -> `{ enum }`.
 *   Use `isPbMessage` to tell a nested message from an `{ enum }` scalar.
 * - Positions: `fieldPositions(msg, field)[i]` is where `msg[field][i]` starts in the source
 *   (1-based line and column, columns in UTF-16 code units); `fieldLine` is the shortcut.
 *   They live in a WeakMap, so messages stay plain data (`toEqual`, JSON, spread all ignore them).
 * - Errors: any malformed input throws `PbtxtSyntaxError` whose message reads
 *   `line L, column C: expected X, found Y`. Extensions / Any (`[type.url]`) are rejected.
 * - Messages are null-prototype objects so field names like `__proto__` are safe.
 */

export type PbScalar = string | number | boolean | { enum: string };
export type PbValue = PbScalar | PbMessage;
export interface PbMessage {
  [field: string]: PbValue[];
}
export interface PbPosition {
  line: number;
  column: number;
}

export class PbtxtSyntaxError extends Error {
  override readonly name = 'PbtxtSyntaxError';
  constructor(
    readonly line: number,
    readonly column: number,
    /** The message without the `line L, column C: ` prefix. */
    readonly detail: string,
  ) {
    super(`line ${line}, column ${column}: ${detail}`);
  }
}

const positions = new WeakMap<PbMessage, Map<string, PbPosition[]>>();

/** Start position of each value of `field`, index-aligned with `msg[field]`; empty if unknown. */
export function fieldPositions(msg: PbMessage, field: string): readonly PbPosition[] {
  return positions.get(msg)?.get(field) ?? [];
}

/** Line where the `index`-th value of `field` starts (default: the first occurrence). */
export function fieldLine(msg: PbMessage, field: string, index = 0): number | undefined {
  return fieldPositions(msg, field)[index]?.line;
}

/** True for a nested message; false for scalars, including `{ enum }` (whose `enum` is a string). */
export function isPbMessage(v: PbValue): v is PbMessage {
  return typeof v === 'object' && typeof (v as { enum?: unknown }).enum !== 'string';
}

export function parsePbtxt(text: string): PbMessage {
  return new Parser(new Lexer(text)).document();
}

// ---------------------------------------------------------------------------------------------

interface Token extends PbPosition {
  kind: 'ident' | 'number' | 'string' | 'punct' | 'eof';
  text: string; // source text (punctuation, identifier, raw literal)
  value?: string | number; // decoded string / number
}

const IDENT = /[A-Za-z_][A-Za-z0-9_]*/y;
const NUMBER = /-?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[fF]?)/y;
const SIMPLE_ESCAPES: Record<string, number> = {
  n: 10, t: 9, r: 13, a: 7, b: 8, f: 12, v: 11, '\\': 92, "'": 39, '"': 34, '?': 63,
};
const MAX_DEPTH = 100;

function describe(t: Token): string {
  if (t.kind === 'eof') return 'end of input';
  if (t.kind === 'string') return `string ${t.text.length > 30 ? t.text.slice(0, 27) + '...' : t.text}`;
  return `'${t.text}'`;
}

class Lexer {
  private i = 0;
  private line = 1;
  private column = 1;
  constructor(private readonly src: string) {}

  private advance(n: number): void {
    for (const end = this.i + n; this.i < end; this.i++) {
      if (this.src[this.i] === '\n') (this.line++, (this.column = 1));
      else this.column++;
    }
  }

  private fail(pos: PbPosition, detail: string): never {
    throw new PbtxtSyntaxError(pos.line, pos.column, detail);
  }

  next(): Token {
    const { src } = this;
    for (;;) { // skip whitespace and '#' comments
      const c = src[this.i];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') this.advance(1);
      else if (c === '#') { const nl = src.indexOf('\n', this.i); this.advance((nl < 0 ? src.length : nl) - this.i); }
      else break;
    }
    const pos = { line: this.line, column: this.column };
    const c = src[this.i];
    if (c === undefined) return { kind: 'eof', text: '', ...pos };
    if ('{}<>[]:,;'.includes(c)) return this.advance(1), { kind: 'punct', text: c, ...pos };
    if (c === '"' || c === "'") return this.string(pos, c);
    const rx = /[A-Za-z_]/.test(c) ? IDENT : NUMBER;
    rx.lastIndex = this.i;
    const m = rx.exec(src);
    if (!m) this.fail(pos, `expected a field name, value or one of { } < > [ ] : , ; found ${JSON.stringify(c)}`);
    const text = m[0];
    if (rx === IDENT) return this.advance(text.length), { kind: 'ident', text, ...pos };
    const tail = /^[A-Za-z0-9_.]+/.exec(src.slice(this.i + text.length))?.[0];
    if (tail) this.fail(pos, `expected a number, found '${text}${tail}'`);
    this.advance(text.length);
    const neg = text.startsWith('-');
    const body = neg ? text.slice(1) : text;
    let value: number;
    if (/^0[xX]/.test(body)) value = parseInt(body.slice(2), 16);
    else if (/^0[0-7]+$/.test(body)) value = parseInt(body, 8);
    else value = Number(body.replace(/[fF]$/, ''));
    return { kind: 'number', text, value: neg ? -value : value, ...pos };
  }

  /** Quoted literal; escapes produce bytes, the whole literal is decoded as UTF-8. */
  private string(pos: PbPosition, quote: string): Token {
    const { src } = this;
    const start = this.i;
    const bytes: number[] = [];
    const encoder = new TextEncoder();
    this.advance(1);
    for (;;) {
      const c = src[this.i];
      if (c === undefined || c === '\n') {
        this.fail(pos, `unterminated string: expected closing ${quote} before ${c === undefined ? 'end of input' : 'end of line'}`);
      }
      if (c === quote) { this.advance(1); break; }
      if (c !== '\\') {
        let end = this.i;
        while (end < src.length && !['\\', '\n', quote].includes(src[end]!)) end++;
        bytes.push(...encoder.encode(src.slice(this.i, end)));
        this.advance(end - this.i);
        continue;
      }
      const escPos = { line: this.line, column: this.column };
      const e = src[this.i + 1] ?? '';
      const run = (rx: RegExp): string => rx.exec(src.slice(this.i + 2))?.[0] ?? '';
      if (e in SIMPLE_ESCAPES) { bytes.push(SIMPLE_ESCAPES[e]!); this.advance(2); continue; }
      if (/[0-7]/.test(e)) {
        const digits = /^[0-7]{1,3}/.exec(src.slice(this.i + 1))![0];
        const byte = parseInt(digits, 8);
        if (byte > 255) this.fail(escPos, `expected an octal escape up to \\377, found '\\${digits}'`);
        bytes.push(byte);
        this.advance(1 + digits.length);
        continue;
      }
      if (e === 'x' || e === 'X') {
        const digits = run(/^[0-9a-fA-F]{1,2}/);
        if (!digits) this.fail(escPos, `expected hex digits after '\\${e}'`);
        bytes.push(parseInt(digits, 16));
        this.advance(2 + digits.length);
        continue;
      }
      if (e === 'u' || e === 'U') {
        const n = e === 'u' ? 4 : 8;
        const digits = run(new RegExp(`^[0-9a-fA-F]{${n}}`));
        const cp = parseInt(digits, 16);
        if (!digits || cp > 0x10ffff) this.fail(escPos, `expected ${n} hex digits (a Unicode code point) after '\\${e}'`);
        bytes.push(...encoder.encode(String.fromCodePoint(cp)));
        this.advance(2 + n);
        continue;
      }
      this.fail(escPos, `expected a valid escape (\\n \\t \\" \\' \\\\ \\NNN \\xHH \\uHHHH), found '\\${e}'`);
    }
    const value = new TextDecoder().decode(new Uint8Array(bytes));
    return { kind: 'string', text: src.slice(start, this.i), value, ...pos };
  }
}

interface Open {
  name: string;
  closer: string;
  at: Token;
}

class Parser {
  private tok: Token;
  private depth = 0;
  constructor(private readonly lexer: Lexer) {
    this.tok = lexer.next();
  }

  private take(): Token {
    const t = this.tok;
    this.tok = this.lexer.next();
    return t;
  }
  private is(punct: string): boolean {
    return this.tok.kind === 'punct' && this.tok.text === punct;
  }
  private fail(detail: string, at: PbPosition = this.tok): never {
    throw new PbtxtSyntaxError(at.line, at.column, detail);
  }

  document(): PbMessage {
    return this.body(null);
  }

  /** Fields up to the closing delimiter of `open` (consumed), or to end of input at top level. */
  private body(open: Open | null): PbMessage {
    const msg = Object.create(null) as PbMessage;
    positions.set(msg, new Map());
    const where = open ? ` to close '${open.name}' (opened at line ${open.at.line}, column ${open.at.column})` : '';
    for (;;) {
      if (open && this.is(open.closer)) return this.take(), msg;
      if (this.tok.kind === 'eof') {
        if (open) this.fail(`expected '${open.closer}'${where}, found end of input`);
        return msg;
      }
      if (this.is('[')) this.fail(`expected a field name, found '[' (extension and Any fields '[type.url]' are not supported)`);
      if (this.tok.kind !== 'ident') {
        this.fail(open ? `expected a field name or '${open.closer}'${where}, found ${describe(this.tok)}`
          : `expected a field name, found ${describe(this.tok)}`);
      }
      this.field(msg);
      if (this.is(',') || this.is(';')) this.take();
    }
  }

  private field(msg: PbMessage): void {
    const name = this.take().text;
    if (this.is(':')) {
      this.take();
      if (this.is('[')) this.list(msg, name, false);
      else this.push(msg, name, this.tok, this.value(name, false));
    } else if (this.is('{') || this.is('<')) {
      this.push(msg, name, this.tok, this.message(name));
    } else if (this.is('[')) {
      this.list(msg, name, true);
    } else {
      this.fail(`expected ':' or '{' after field name '${name}', found ${describe(this.tok)}`);
    }
  }

  /** `[ v, v, ... ]`; without a ':' before it, protobuf allows only messages as elements. */
  private list(msg: PbMessage, name: string, messagesOnly: boolean): void {
    const open = this.take();
    msg[name] ??= [];
    if (this.is(']')) return void this.take();
    for (;;) {
      this.push(msg, name, this.tok, this.value(name, messagesOnly));
      if (this.is(']')) return void this.take();
      if (!this.is(',')) {
        this.fail(`expected ',' or ']' in the list for field '${name}' (opened at line ${open.line}, column ${open.column}), found ${describe(this.tok)}`);
      }
      this.take();
    }
  }

  private value(name: string, messagesOnly: boolean): PbValue {
    const t = this.tok;
    if (this.is('{') || this.is('<')) return this.message(name);
    if (messagesOnly) {
      this.fail(`expected '{' or '<' to start a message in the list for field '${name}', found ${describe(t)}` +
        ` (a list of scalars needs a colon: '${name}: [ ... ]')`);
    }
    if (t.kind === 'string') {
      let s = '';
      while (this.tok.kind === 'string') s += this.take().value as string;
      return s;
    }
    if (t.kind === 'number') return this.take().value as number;
    if (t.kind === 'ident') {
      this.take();
      if (t.text === 'true' || t.text === 'True' || t.text === 't') return true;
      if (t.text === 'false' || t.text === 'False' || t.text === 'f') return false;
      return { enum: t.text };
    }
    this.fail(`expected a value for field '${name}', found ${describe(t)}`);
  }

  private message(name: string): PbMessage {
    const at = this.take();
    if (++this.depth > MAX_DEPTH) this.fail(`expected at most ${MAX_DEPTH} nested messages, found more`, at);
    const msg = this.body({ name, closer: at.text === '{' ? '}' : '>', at });
    this.depth--;
    return msg;
  }

  private push(msg: PbMessage, name: string, at: PbPosition, value: PbValue): void {
    (msg[name] ??= []).push(value);
    const map = positions.get(msg)!;
    let list = map.get(name);
    if (!list) map.set(name, (list = []));
    list.push({ line: at.line, column: at.column });
  }
}
