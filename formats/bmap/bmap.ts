/**
 * bmaptool's block map files (bmap-tools, docs/README and bmaptools/BmapCreate.py, BmapCopy.py):
 * an XML file listing the blocks of an image that hold data, with a checksum per range of
 * blocks and one over the file itself. Versions:
 * - 1.0 to 1.2: no checksums;
 * - 1.3: SHA-1 only, in `sha1="..."` range attributes and a `<BmapFileSHA1>` element;
 * - 1.4 and 2.0 (the same format: 1.4 was a numbering mistake): `<ChecksumType>` names the
 *   hash, ranges carry `chksum="..."`, the file's own is `<BmapFileChecksum>`.
 * The file checksum is the hash of the file's bytes with that element's value replaced by as
 * many ASCII '0's (BmapCreate._bmap_file_end, BmapCopy._verify_bmap_checksum).
 * Pure: text in, objects out, and back.
 */
import { sha1 } from '@noble/hashes/legacy.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { fail } from '../common/errors.js';

export type BmapChecksumType = 'sha1' | 'sha256' | 'sha512';

/** Blocks `first` to `last` (inclusive) hold data; `checksum` (hex) covers their bytes up to ImageSize. */
export interface BmapRange {
  first: number;
  last: number;
  checksum?: string;
}

export interface BlockMap {
  /** 'major.minor' as the file says it ('2.0', '1.3' ...). */
  version: string;
  imageSize: number;
  blockSize: number;
  blocksCount: number;
  mappedBlocksCount: number;
  /** Undefined before version 1.3 (no checksums). */
  checksumType?: BmapChecksumType;
  ranges: BmapRange[];
}

/** The version diskmint writes (BmapCreate.SUPPORTED_BMAP_VERSION). */
export const BMAP_VERSION = '2.0';
/** bmaptool reads files of format major version up to 2 (BmapCopy.SUPPORTED_BMAP_VERSION). */
const MAX_MAJOR = 2;
/** A bmap file larger than this is refused before parsing (a 1 TiB image in 4 KiB ranges of one block each is ~90 MiB). */
export const MAX_BMAP_TEXT = 256 * 1024 * 1024;

const HEX_LENGTH: Record<BmapChecksumType, number> = { sha1: 40, sha256: 64, sha512: 128 };
const HASHES: Record<BmapChecksumType, (b: Uint8Array) => Uint8Array> = { sha1, sha256, sha512 };

/** The hex digest of `bytes` with `type`. */
export function bmapDigest(type: BmapChecksumType, bytes: Uint8Array): string {
  return bytesToHex(HASHES[type](bytes));
}

const wrong = (message: string) => fail('bmap', 'BAD_VALUE', message);

/** Text of the only `<name>` element (comments already removed). */
function element(xml: string, name: string): string | undefined {
  const all = [...xml.matchAll(new RegExp(`<${name}\\s*>([^<]*)</${name}\\s*>`, 'g'))];
  if (all.length > 1) throw wrong(`<${name}> appears ${all.length} times`);
  return all[0]?.[1].trim();
}

function count(xml: string, name: string): number {
  const text = element(xml, name);
  if (text === undefined) throw fail('bmap', 'TRUNCATED', `no <${name}> element`);
  if (!/^\d{1,16}$/.test(text) || !Number.isSafeInteger(Number(text))) throw wrong(`<${name}> is not a whole number: '${text.slice(0, 40)}'`);
  return Number(text);
}

function attributes(text: string): Map<string, string> {
  const attrs = new Map<string, string>();
  for (const m of text.matchAll(/([A-Za-z_][\w.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) attrs.set(m[1], m[2] ?? m[3]);
  return attrs;
}

/**
 * Read a bmap file. Checks what BmapCopy checks (version, BlocksCount against ImageSize, the
 * file checksum, first <= last) and what it leaves to chance: ranges ascending, disjoint and
 * inside the image, checksums of the right length, MappedBlocksCount equal to the ranges' sum.
 */
export function parseBmap(text: string): BlockMap {
  if (text.length > MAX_BMAP_TEXT) throw fail('bmap', 'TOO_LARGE', `a bmap file of ${text.length} characters is more than ${MAX_BMAP_TEXT}`);
  const xml = text.replace(/<!--[\s\S]*?-->/g, '').replace(/<\?[\s\S]*?\?>/g, '');
  const root = /<bmap(\s[^>]*)?>/.exec(xml);
  if (!root || !/<\/bmap\s*>/.test(xml)) throw fail('bmap', 'BAD_MAGIC', 'not a bmap file (no <bmap> element)');
  const version = attributes(root[1] ?? '').get('version') ?? '';
  const v = /^(\d{1,4})\.(\d{1,4})$/.exec(version);
  if (!v) throw wrong(`bmap version '${version}' is not 'major.minor'`);
  const [major, minor] = [Number(v[1]), Number(v[2])];
  if (major > MAX_MAJOR) throw wrong(`bmap version ${version} is newer than ${BMAP_VERSION}, the last this reads`);
  const imageSize = count(xml, 'ImageSize');
  const blockSize = count(xml, 'BlockSize');
  const blocksCount = count(xml, 'BlocksCount');
  const mappedBlocksCount = count(xml, 'MappedBlocksCount');
  if (blockSize === 0 || blockSize % 512 !== 0) throw wrong(`block size ${blockSize} is not a multiple of 512`);
  if (blocksCount !== Math.ceil(imageSize / blockSize)) {
    throw wrong(`${blocksCount} blocks of ${blockSize} bytes do not make an image of ${imageSize} bytes`);
  }
  // BmapCopy._parse_bmap: 1.4 and 2.x name their hash; 1.3 is SHA-1; earlier ones have none.
  const named = major > 1 || (major === 1 && minor === 4);
  let checksumType: BmapChecksumType | undefined;
  if (named) {
    const type = (element(xml, 'ChecksumType') ?? '').toLowerCase();
    if (!(type in HEX_LENGTH)) throw wrong(`checksum type '${type.slice(0, 40)}' is not one of ${Object.keys(HEX_LENGTH).join(', ')}`);
    checksumType = type as BmapChecksumType;
  } else if (minor === 3) checksumType = 'sha1';
  const attr = named ? 'chksum' : 'sha1';
  if (checksumType) checkFileChecksum(text, xml, checksumType, named ? 'BmapFileChecksum' : 'BmapFileSHA1');

  const blockMap = /<BlockMap\s*>([\s\S]*?)<\/BlockMap\s*>/.exec(xml);
  if (!blockMap) throw fail('bmap', 'TRUNCATED', 'no <BlockMap> element');
  const ranges: BmapRange[] = [];
  let mapped = 0;
  for (const m of blockMap[1].matchAll(/<Range(\s[^>]*)?>([^<]*)<\/Range\s*>/g)) {
    const body = m[2].trim();
    const r = /^(\d{1,16})\s*(?:-\s*(\d{1,16}))?$/.exec(body);
    if (!r) throw wrong(`range '${body.slice(0, 40)}' is not 'first-last' or one block`);
    const first = Number(r[1]);
    const last = r[2] === undefined ? first : Number(r[2]);
    if (first > last) throw wrong(`bad range (first > last): '${body}'`);
    if (last >= blocksCount) throw wrong(`range ${body} ends past the image's ${blocksCount} blocks`);
    const prev = ranges[ranges.length - 1];
    if (prev && first <= prev.last) throw wrong(`range ${body} does not follow range ${prev.first}-${prev.last}`);
    const range: BmapRange = { first, last };
    const sum = checksumType ? attributes(m[1] ?? '').get(attr) : undefined;
    if (sum !== undefined) {
      if (!new RegExp(`^[0-9a-f]{${HEX_LENGTH[checksumType!]}}$`).test(sum))
        throw wrong(`range ${body}: '${sum.slice(0, 140)}' is not a ${checksumType} checksum`);
      range.checksum = sum;
    }
    mapped += last - first + 1;
    ranges.push(range);
  }
  if (mapped !== mappedBlocksCount) throw wrong(`MappedBlocksCount says ${mappedBlocksCount} blocks, the ranges hold ${mapped}`);
  return { version, imageSize, blockSize, blocksCount, mappedBlocksCount, checksumType, ranges };
}

/** BmapCopy._verify_bmap_checksum: the first occurrence of the stored value is zeroed, the bytes hashed. */
function checkFileChecksum(text: string, xml: string, type: BmapChecksumType, name: string): void {
  const stored = element(xml, name);
  if (stored === undefined) throw fail('bmap', 'TRUNCATED', `no <${name}> element`);
  if (!new RegExp(`^[0-9a-f]{${HEX_LENGTH[type]}}$`).test(stored)) throw wrong(`<${name}> is not a ${type} checksum`);
  const at = text.indexOf(stored);
  const zeroed = text.slice(0, at) + '0'.repeat(stored.length) + text.slice(at + stored.length);
  const computed = bmapDigest(type, new TextEncoder().encode(zeroed));
  if (computed !== stored) throw fail('bmap', 'BAD_CHECKSUM', `the bmap file's checksum is ${computed}, it says ${stored}: the file was changed or damaged`);
}

/** BmapHelpers.human_size. */
function humanSize(size: number): string {
  if (size === 1) return '1 byte';
  if (size < 512) return `${size} bytes`;
  let s = size;
  for (const unit of ['KiB', 'MiB', 'GiB', 'TiB']) {
    s /= 1024;
    if (s < 1024) return `${s.toFixed(1)} ${unit}`;
  }
  return `${s.toFixed(1)} EiB`;
}

/**
 * Write a version 2.0 bmap file as `bmaptool create` lays it out (the same elements, comments
 * and spacing), its BmapFileChecksum computed over the text with that value as '0's. Every
 * range needs its checksum of `map.checksumType` (default sha256).
 */
export function writeBmap(map: Pick<BlockMap, 'imageSize' | 'blockSize' | 'ranges'> & { checksumType?: BmapChecksumType }): string {
  const type = map.checksumType ?? 'sha256';
  const blocksCount = Math.ceil(map.imageSize / map.blockSize);
  let mapped = 0;
  const lines: string[] = [];
  for (const r of map.ranges) {
    if (!r.checksum || r.checksum.length !== HEX_LENGTH[type]) throw fail('bmap', 'INVALID_ARGUMENT', `range ${r.first}-${r.last} has no ${type} checksum`);
    if (r.first > r.last || r.last >= blocksCount) throw fail('bmap', 'INVALID_ARGUMENT', `range ${r.first}-${r.last} is not inside ${blocksCount} blocks`);
    mapped += r.last - r.first + 1;
    const blocks = r.first === r.last ? `${r.first}` : `${r.first}-${r.last}`;
    lines.push(`        <Range chksum="${r.checksum}"> ${blocks} </Range>\n`);
  }
  const percent = blocksCount ? (mapped * 100) / blocksCount : 0;
  const head = [
    '<?xml version="1.0" ?>',
    '<!-- This file contains the block map for an image file, which is basically',
    '     a list of useful (mapped) block numbers in the image file. In other words,',
    '     it lists only those blocks which contain data (boot sector, partition',
    '     table, file-system metadata, files, directories, extents, etc). These',
    '     blocks have to be copied to the target device. The other blocks do not',
    '     contain any useful data and do not have to be copied to the target',
    '     device. Written by diskmint. -->',
    '',
    `<bmap version="${BMAP_VERSION}">`,
    `    <!-- Image size in bytes: ${humanSize(map.imageSize)} -->`,
    `    <ImageSize> ${map.imageSize} </ImageSize>`,
    '',
    '    <!-- Size of a block in bytes -->',
    `    <BlockSize> ${map.blockSize} </BlockSize>`,
    '',
    '    <!-- Count of blocks in the image file -->',
    `    <BlocksCount> ${blocksCount} </BlocksCount>`,
    '',
    `    <!-- Count of mapped blocks: ${humanSize(mapped * map.blockSize)} or ${percent.toFixed(1)}% -->`,
    `    <MappedBlocksCount> ${mapped} </MappedBlocksCount>`,
    '',
    '    <!-- Type of checksum used in this file -->',
    `    <ChecksumType> ${type} </ChecksumType>`,
    '',
    '    <!-- The checksum of this bmap file. When it is calculated, the value of',
    '         the checksum has be zero (all ASCII "0" symbols).  -->',
    '    <BmapFileChecksum> ',
  ].join('\n');
  const tail = [
    ' </BmapFileChecksum>',
    '',
    '    <!-- The block map which consists of elements which may either be a',
    "         range of blocks or a single block. The 'chksum' attribute",
    '         (if present) is the checksum of this blocks range. -->',
    '    <BlockMap>\n',
  ].join('\n');
  const end = '    </BlockMap>\n</bmap>\n';
  const zeros = '0'.repeat(HEX_LENGTH[type]);
  const body = `${tail}${lines.join('')}${end}`;
  const sum = bmapDigest(type, new TextEncoder().encode(`${head}${zeros}${body}`));
  return `${head}${sum}${body}`;
}
