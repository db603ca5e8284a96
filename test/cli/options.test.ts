/** The CLI's option declarations: values' types derived from the flags, numbers checked as parsed. */
import { Command, InvalidArgumentError } from 'commander';
import { describe, expect, expectTypeOf, it } from 'vitest';
import * as opts from '../../src/cli/options.js';
import type { KeyOf, Values } from '../../src/cli/options.js';
import { DiskmintError } from '../../src/model/errors.js';
import { toJson } from '../../src/cli/json.js';

const SAMPLE = [
  opts.required(opts.output),
  opts.json,
  opts.threads,
  opts.compression,
  opts.sectorSize,
  opts.flag('--no-hash', 'x'),
  opts.withDefault(opts.text('--boot-stage <f>', 'x'), 'gptboot'),
] as const;

/** Parse `args` with a command taking SAMPLE; commander's errors are thrown, not exits. */
function parse(args: string[]): Values<typeof SAMPLE> {
  const cmd = opts.addOptions(new Command('t').exitOverride().configureOutput({ writeErr: () => {} }), SAMPLE);
  cmd.parse(args, { from: 'user' });
  return cmd.opts() as Values<typeof SAMPLE>;
}

describe('CLI options', () => {
  it('derive the key and type of each value from the flags', () => {
    expectTypeOf<KeyOf<'-o, --output <file>'>>().toEqualTypeOf<'output'>();
    expectTypeOf<KeyOf<'--no-hash'>>().toEqualTypeOf<'hash'>();
    expectTypeOf<KeyOf<'--boot-stage-fails <n>'>>().toEqualTypeOf<'bootStageFails'>();
    type V = Values<typeof SAMPLE>;
    expectTypeOf<V['output']>().toEqualTypeOf<string>(); // required: always there
    expectTypeOf<V['bootStage']>().toEqualTypeOf<string>(); // has a default
    expectTypeOf<V['threads']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<V['compression']>().toEqualTypeOf<'deflate' | 'zstd' | undefined>();
    expectTypeOf<V['sectorSize']>().toEqualTypeOf<512 | 4096 | undefined>();
    expectTypeOf<V['json']>().toEqualTypeOf<boolean | undefined>();
    const v = parse(['-o', 'x.img', '--threads', '4', '--sector-size', '4096', '--no-hash', '--json']);
    expect(v).toEqual({ output: 'x.img', threads: 4, sectorSize: 4096, hash: false, json: true, bootStage: 'gptboot' });
  });

  it('refuse a number that is not a whole number in range, naming the option', () => {
    for (const bad of ['abc', '0', '1.5', '', '1e3', '0x10', '1025', ' ']) {
      expect(() => parse(['-o', 'x', '--threads', bad]), bad).toThrow(
        /option '--threads <n>' argument '.*' is invalid\. expected a whole number from 1 to 1024/,
      );
    }
    expect(parse(['-o', 'x', '--threads', '1024']).threads).toBe(1024);
    expect(() => opts.parseInteger(0, 9)('10')).toThrow(InvalidArgumentError);
    expect(opts.parseInteger(-1, 9)('-1')).toBe(-1);
    expect(() => parse([])).toThrow(/required option '-o, --output <file>' not specified/);
  });

  it('check --level against its algorithm', () => {
    expect(opts.checkLevel(9, 'deflate')).toBe(9);
    expect(opts.checkLevel(0, 'deflate')).toBe(0);
    expect(opts.checkLevel(22, 'zstd')).toBe(22);
    expect(opts.checkLevel(undefined, 'zstd')).toBeUndefined();
    expect(() => opts.checkLevel(10, 'deflate')).toThrow(DiskmintError);
    expect(() => opts.checkLevel(0, 'zstd')).toThrow(/--level 0: zstd levels go from 1 to 22/);
  });

  it('hidden options parse but stay out of --help', () => {
    const cmd = opts.addOptions(new Command('t'), [opts.output, opts.hidden(opts.text('--out <key>', 'old'))] as const);
    expect(cmd.helpInformation()).toContain('--output');
    expect(cmd.helpInformation()).not.toContain('--out <key>');
    cmd.parse(['--out', 'k'], { from: 'user' });
    expect(cmd.opts()).toEqual({ out: 'k' });
  });
});

describe('the JSON printer', () => {
  it('prints bigints as decimal strings, nested too, indented by two, with one newline', () => {
    expect(toJson({ a: 1n << 63n, b: [{ c: -5n }], d: 'x' })).toBe(
      '{\n  "a": "9223372036854775808",\n  "b": [\n    {\n      "c": "-5"\n    }\n  ],\n  "d": "x"\n}\n',
    );
  });
});
