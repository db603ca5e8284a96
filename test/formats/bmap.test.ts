import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseBmap, writeBmap, type BlockMap, type BmapRange } from '../../formats/bmap/bmap.js';
import { FormatError } from '../../formats/common/errors.js';

const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));

/** Ascending, disjoint ranges inside `blocks` blocks, each with a SHA-256. */
const rangesArb = (blocks: number): fc.Arbitrary<BmapRange[]> =>
  fc.uniqueArray(fc.integer({ min: 0, max: blocks - 1 }), { maxLength: 40 }).chain((points) => {
    const sorted = [...points].sort((a, b) => a - b);
    // Pair the points up as first-last; odd leftovers become one-block ranges.
    const pairs: Array<[number, number]> = [];
    for (let i = 0; i < sorted.length; i += 2) pairs.push([sorted[i], sorted[i + 1] ?? sorted[i]]);
    return fc.tuple(...pairs.map(() => hex(64))).map((sums) => pairs.map(([first, last], i) => ({ first, last, checksum: sums[i] })));
  });

const mapArb: fc.Arbitrary<BlockMap> = fc
  .record({ imageSize: fc.integer({ min: 1, max: 2 ** 40 }), blockSize: fc.constantFrom(512, 4096, 65536) })
  .chain(({ imageSize, blockSize }) => {
    const blocksCount = Math.ceil(imageSize / blockSize);
    return rangesArb(Math.min(blocksCount, 1_000_000)).map((ranges) => ({
      version: '2.0',
      imageSize,
      blockSize,
      blocksCount,
      mappedBlocksCount: ranges.reduce((n, r) => n + r.last - r.first + 1, 0),
      checksumType: 'sha256' as const,
      ranges,
    }));
  });

/** A bmap file as bmaptool 1.3 wrote them (SHA-1 everywhere), its file checksum made here with node:crypto. */
function version13(ranges: Array<{ first: number; last: number; sha1?: string }>, imageSize: number): string {
  const body = (sum: string) =>
    [
      '<?xml version="1.0" ?>',
      '<bmap version="1.3">',
      `    <ImageSize> ${imageSize} </ImageSize>`,
      '    <BlockSize> 4096 </BlockSize>',
      `    <BlocksCount> ${Math.ceil(imageSize / 4096)} </BlocksCount>`,
      `    <MappedBlocksCount> ${ranges.reduce((n, r) => n + r.last - r.first + 1, 0)} </MappedBlocksCount>`,
      `    <BmapFileSHA1> ${sum} </BmapFileSHA1>`,
      '    <BlockMap>',
      ...ranges.map((r) => `        <Range${r.sha1 ? ` sha1="${r.sha1}"` : ''}> ${r.first === r.last ? r.first : `${r.first}-${r.last}`} </Range>`),
      '    </BlockMap>',
      '</bmap>',
      '',
    ].join('\n');
  const sum = createHash('sha1')
    .update(body('0'.repeat(40)))
    .digest('hex');
  return body(sum);
}

describe('bmap codec', () => {
  it('parse(write(map)) gives the map back', () => {
    fc.assert(
      fc.property(mapArb, (map) => {
        expect(parseBmap(writeBmap(map))).toEqual(map);
      }),
    );
  });

  it("the file checksum is SHA-256 over the text with its own value as '0's (as bmaptool computes it)", () => {
    fc.assert(
      fc.property(mapArb, (map) => {
        const text = writeBmap(map);
        const stored = /<BmapFileChecksum> ([0-9a-f]{64}) </.exec(text)![1];
        expect(
          createHash('sha256')
            .update(text.replace(stored, '0'.repeat(64)))
            .digest('hex'),
        ).toBe(stored);
      }),
    );
  });

  it('any change to a written map is caught by its file checksum', () => {
    fc.assert(
      fc.property(mapArb, fc.nat(), (map, where) => {
        const text = writeBmap(map);
        // Change one digit of a number or checksum inside the elements (not in comments).
        const digits = [...text.matchAll(/[0-9a-f](?=[0-9a-f]* <\/|[0-9a-f]*">| <\/| -)/g)].map((m) => m.index!);
        const at = digits[where % digits.length];
        const changed = text.slice(0, at) + (text[at] === '1' ? '2' : '1') + text.slice(at + 1);
        expect(() => parseBmap(changed)).toThrow(FormatError);
      }),
    );
  });

  it('reads version 1.3 maps (SHA-1 in sha1= attributes and BmapFileSHA1) and 1.0 maps without checksums', () => {
    const sha = createHash('sha1').update('x').digest('hex');
    const m13 = parseBmap(
      version13(
        [
          { first: 0, last: 3, sha1: sha },
          { first: 9, last: 9 },
        ],
        40960,
      ),
    );
    expect(m13.checksumType).toBe('sha1');
    expect(m13.ranges).toEqual([
      { first: 0, last: 3, checksum: sha },
      { first: 9, last: 9 },
    ]);
    const v10 = version13([{ first: 2, last: 5 }], 40960)
      .replace('version="1.3"', 'version="1.0"')
      .replace(/<BmapFileSHA1>.*<\/BmapFileSHA1>/, '');
    const m10 = parseBmap(v10);
    expect(m10.checksumType).toBeUndefined();
    expect(m10.ranges).toEqual([{ first: 2, last: 5 }]);
  });

  it('refuses maps bmaptool would misread: newer major version, blocks count off, overlapping or out-of-image ranges, wrong mapped count', () => {
    const good = writeBmap({ imageSize: 40960, blockSize: 4096, ranges: [{ first: 1, last: 2, checksum: 'a'.repeat(64) }] });
    // The file checksum would also fail after these edits: check that the message names the real problem.
    const refused = (text: string, pattern: RegExp) => expect(() => parseBmap(text)).toThrow(pattern);
    refused(good.replace('<bmap version="2.0">', '<bmap version="3.0">'), /newer than 2.0/);
    refused(good.replace('<BlocksCount> 10 </BlocksCount>', '<BlocksCount> 11 </BlocksCount>'), /do not make an image/);
    refused(good.replace('<ChecksumType> sha256 </ChecksumType>', '<ChecksumType> md5 </ChecksumType>'), /checksum type 'md5'/);
    refused('<html></html>', /not a bmap file/);
    const unchecked = (ranges: string, mapped: number) =>
      version13([], 40960)
        .replace('version="1.3"', 'version="1.0"')
        .replace(/<BmapFileSHA1>.*<\/BmapFileSHA1>/, '')
        .replace('<MappedBlocksCount> 0 </MappedBlocksCount>', `<MappedBlocksCount> ${mapped} </MappedBlocksCount>`)
        .replace('    <BlockMap>\n', `    <BlockMap>\n${ranges}`);
    expect(parseBmap(unchecked('<Range> 1-2 </Range><Range> 4 </Range>', 3)).ranges).toHaveLength(2);
    refused(unchecked('<Range> 1-2 </Range><Range> 2-4 </Range>', 5), /does not follow/);
    refused(unchecked('<Range> 5-3 </Range>', 3), /first > last/);
    refused(unchecked('<Range> 9-10 </Range>', 2), /ends past/);
    refused(unchecked('<Range> 1-2 </Range>', 3), /MappedBlocksCount says 3/);
  });

  it('never throws anything but FormatError on mangled text', () => {
    const base = writeBmap({ imageSize: 1 << 20, blockSize: 4096, ranges: [{ first: 0, last: 7, checksum: 'b'.repeat(64) }] });
    fc.assert(
      fc.property(fc.nat(base.length), fc.nat(base.length), fc.string({ maxLength: 8 }), (a, b, s) => {
        const [from, to] = a < b ? [a, b] : [b, a];
        try {
          parseBmap(base.slice(0, from) + s + base.slice(to));
        } catch (err) {
          expect(err).toBeInstanceOf(FormatError);
        }
      }),
    );
  });
});
