import { describe, expect, it } from 'vitest';
import {
  fieldLine,
  fieldPositions,
  isPbMessage,
  parsePbtxt,
  PbtxtSyntaxError,
  type PbMessage,
} from '../../src/repository/pbtxt.js';

const REALISTIC = `# ResNet-50 exported to ONNX
name: "resnet50"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [
  {
    name: "input"
    data_type: TYPE_FP32
    format: FORMAT_NCHW
    dims: [ 3, 224, 224 ]
  }
]
output [
  {
    name: "output"
    data_type: TYPE_FP32
    dims: [ -1, 1000 ]
    label_filename: "labels.txt"
  }
]
dynamic_batching {
  preferred_batch_size: [ 4, 8 ]
  max_queue_delay_microseconds: 100
  preserve_ordering: true
  default_queue_policy {
    timeout_action: REJECT
    default_timeout_microseconds: 1000000
    allow_timeout_override: false
    max_queue_size: 64
  }
}
instance_group [ { count: 2, kind: KIND_CPU } ]
parameters { key: "intra_op_thread_count" value: { string_value: "4" } }
parameters { key: "enable_mem_arena" value: { string_value: "1" } }
version_policy: { latest: { num_versions: 2 } }
`;

function syntaxError(text: string): PbtxtSyntaxError {
  try {
    parsePbtxt(text);
  } catch (e) {
    expect(e).toBeInstanceOf(PbtxtSyntaxError);
    return e as PbtxtSyntaxError;
  }
  throw new Error(`expected a syntax error for ${JSON.stringify(text)}`);
}

describe('parsePbtxt', () => {
  it('parses a realistic Triton config into field -> list of values', () => {
    expect(parsePbtxt(REALISTIC)).toEqual({
      name: ['resnet50'],
      platform: ['onnxruntime_onnx'],
      max_batch_size: [8],
      input: [{
        name: ['input'],
        data_type: [{ enum: 'TYPE_FP32' }],
        format: [{ enum: 'FORMAT_NCHW' }],
        dims: [3, 224, 224],
      }],
      output: [{
        name: ['output'],
        data_type: [{ enum: 'TYPE_FP32' }],
        dims: [-1, 1000],
        label_filename: ['labels.txt'],
      }],
      dynamic_batching: [{
        preferred_batch_size: [4, 8],
        max_queue_delay_microseconds: [100],
        preserve_ordering: [true],
        default_queue_policy: [{
          timeout_action: [{ enum: 'REJECT' }],
          default_timeout_microseconds: [1000000],
          allow_timeout_override: [false],
          max_queue_size: [64],
        }],
      }],
      instance_group: [{ count: [2], kind: [{ enum: 'KIND_CPU' }] }],
      parameters: [
        { key: ['intra_op_thread_count'], value: [{ string_value: ['4'] }] },
        { key: ['enable_mem_arena'], value: [{ string_value: ['1'] }] },
      ],
      version_policy: [{ latest: [{ num_versions: [2] }] }],
    });
  });

  it('collects repeated `input { } input { }` blocks and `input: [...]` lists alike', () => {
    const blocks = parsePbtxt('input { name: "a" dims: 1 dims: 2 }\ninput: { name: "b" }');
    const list = parsePbtxt('input: [ { name: "a", dims: [1, 2] }, { name: "b" } ]');
    expect(blocks).toEqual({ input: [{ name: ['a'], dims: [1, 2] }, { name: ['b'] }] });
    expect(list).toEqual(blocks);
  });

  it('accepts comments everywhere and optional , ; separators', () => {
    const cfg = parsePbtxt(`# header
name: "m" # trailing
dims: [ # open
  1, # one
  2  # two
] ; max_batch_size: 4,
dynamic_batching { # body
  # only a comment
} # end`);
    expect(cfg).toEqual({ name: ['m'], dims: [1, 2], max_batch_size: [4], dynamic_batching: [{}] });
  });

  it('accepts < > as message delimiters, also mixed with { }', () => {
    expect(parsePbtxt('version_policy < specific < versions: 1 versions: 3 > >\nopt: < a { b: 1 } >'))
      .toEqual({ version_policy: [{ specific: [{ versions: [1, 3] }] }], opt: [{ a: [{ b: [1] }] }] });
  });

  it('parses empty messages and empty lists', () => {
    expect(parsePbtxt('dynamic_batching { }\nsequence_batching: <>\ndims: []'))
      .toEqual({ dynamic_batching: [{}], sequence_batching: [{}], dims: [] });
  });

  it('decodes string escapes and concatenates adjacent literals', () => {
    const cfg = parsePbtxt(String.raw`a: "q\"b\\n\n\t'" b: 'it\'s' c: "x" 'y'
  "z" d: "\101\x42\u00e9\303\251" e: ""`);
    expect(cfg).toEqual({ a: ['q"b\\n\n\t\''], b: ["it's"], c: ['xyz'], d: ['ABéé'], e: [''] });
  });

  it('parses number forms and boolean spellings', () => {
    const cfg = parsePbtxt('n: [-3, 0x10, 010, 0, 1.5, 1e-3, .5, -2.5E2, 2.0f]\nb: [true, True, t, false, False, f]');
    expect(cfg).toEqual({ n: [-3, 16, 8, 0, 1.5, 0.001, 0.5, -250, 2], b: [true, true, true, false, false, false] });
  });

  it('tells nested messages from enum scalars, even a message with a field named enum', () => {
    const cfg = parsePbtxt('k: KIND_GPU m { enum: X }');
    expect(isPbMessage(cfg.k![0]!)).toBe(false);
    expect(isPbMessage(cfg.m![0]!)).toBe(true);
    expect(isPbMessage('s')).toBe(false);
  });

  it('keeps odd field names as plain data', () => {
    const cfg = parsePbtxt('__proto__: 1 constructor: 2');
    expect(cfg.__proto__).toEqual([1]);
    expect(cfg.constructor).toEqual([2]);
  });
});

describe('positions', () => {
  it('records where each value of a field starts, index-aligned with the values', () => {
    const cfg = parsePbtxt(REALISTIC);
    expect(fieldLine(cfg, 'name')).toBe(2);
    expect(fieldLine(cfg, 'max_batch_size')).toBe(4);
    expect(fieldPositions(cfg, 'name')).toEqual([{ line: 2, column: 7 }]);
    expect(fieldLine(cfg, 'input')).toBe(6); // the '{' of the first element
    expect(fieldLine(cfg, 'parameters', 1)).toBe(34);
    expect(fieldLine(cfg, 'missing')).toBeUndefined();

    const input = cfg.input![0] as PbMessage;
    expect(fieldLine(input, 'dims')).toBe(10);
    expect(fieldPositions(input, 'dims').map((p) => p.column)).toEqual([13, 16, 21]);
    const policy = (cfg.dynamic_batching![0] as PbMessage).default_queue_policy![0] as PbMessage;
    expect(fieldLine(policy, 'timeout_action')).toBe(26);
  });

  it('counts repeated blocks separately', () => {
    const cfg = parsePbtxt('input { name: "a" }\n\ninput { name: "b" }');
    expect(fieldPositions(cfg, 'input')).toEqual([{ line: 1, column: 7 }, { line: 3, column: 7 }]);
  });
});

describe('syntax errors', () => {
  it.each([
    ['unterminated string (end of line)', 'name: "resnet\nplatform: "x"', 1, 7,
      'unterminated string: expected closing " before end of line'],
    ['unterminated string (end of input)', "a: 1\nname: 'abc", 2, 7,
      "unterminated string: expected closing ' before end of input"],
    ['missing closing brace', 'dynamic_batching {\n  max_queue_delay_microseconds: 100\n', 3, 1,
      "expected '}' to close 'dynamic_batching' (opened at line 1, column 18), found end of input"],
    ['mismatched delimiter', 'a {\n  b: 1 >', 2, 8,
      "expected a field name or '}' to close 'a' (opened at line 1, column 3), found '>'"],
    ['stray closing brace', 'a: 1\n}', 2, 1, "expected a field name, found '}'"],
    ['dims list cut off at EOF', 'dims: [1,', 1, 10, "expected a value for field 'dims', found end of input"],
    ['unclosed list', 'dims: [1, 2\nname: "x"', 2, 1,
      "expected ',' or ']' in the list for field 'dims' (opened at line 1, column 7), found 'name'"],
    ['missing value', 'max_batch_size: }', 1, 17, "expected a value for field 'max_batch_size', found '}'"],
    ['scalar without colon', 'name "x"', 1, 6, `expected ':' or '{' after field name 'name', found string "x"`],
    ['scalar list without colon', 'dims [ 1, 2 ]', 1, 8,
      "expected '{' or '<' to start a message in the list for field 'dims', found '1'"],
    ['extension field', 'a { [type.googleapis.com/x] { } }', 1, 5,
      "expected a field name, found '[' (extension and Any fields '[type.url]' are not supported)"],
    ['unexpected character', 'a: 1\n  @b: 2', 2, 3, 'expected a field name, value or one of { } < > [ ] : , ; found "@"'],
    ['malformed number', 'count: 12abc', 1, 8, "expected a number, found '12abc'"],
    ['bad escape', 'a: "x\\qy"', 1, 6, "found '\\q'"],
    ['value where a field name belongs', 'a: 1 2', 1, 6, "expected a field name, found '2'"],
  ])('%s', (_label, text, line, column, detail) => {
    const err = syntaxError(text);
    expect({ line: err.line, column: err.column }).toEqual({ line, column });
    expect(err.message).toContain(`line ${line}, column ${column}: `);
    expect(err.message).toContain(detail);
  });

  it('formats the message as "line L, column C: detail"', () => {
    const err = syntaxError('\n\n\n\n\n\n      dims [ 1 ]');
    expect(err.message).toBe(
      "line 7, column 14: expected '{' or '<' to start a message in the list for field 'dims', found '1'" +
        " (a list of scalars needs a colon: 'dims: [ ... ]')",
    );
    expect(err.detail).toBe(err.message.replace('line 7, column 14: ', ''));
    expect(err.name).toBe('PbtxtSyntaxError');
  });
});
