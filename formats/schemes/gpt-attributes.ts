/**
 * GPT partition attribute bits (the 64-bit field at entry byte 48). Bits 0-2 are defined by
 * UEFI 2.10 section 5.3.3 table 5-8; bits 57-59 are FreeBSD's boot attributes
 * (sys/sys/disk/gpt.h, used by gptboot and gpart set -a).
 */
import { fail } from '../common/errors.js';

export const GPT_ATTRIBUTE_BITS: Readonly<Record<string, number>> = Object.freeze({
  required: 0, // Required Partition: platform needs it to function
  'no-block-io': 1, // No Block IO Protocol
  'legacy-bios-bootable': 2, // Legacy BIOS Bootable
  bootfailed: 57, // FreeBSD GPT_ENT_ATTR_BOOTFAILED
  bootonce: 58, // FreeBSD GPT_ENT_ATTR_BOOTONCE
  bootme: 59, // FreeBSD GPT_ENT_ATTR_BOOTME
});

const NAME_BY_BIT: ReadonlyMap<number, string> = new Map(Object.entries(GPT_ATTRIBUTE_BITS).map(([name, bit]) => [bit, name] as const));

const U64_MASK = (1n << 64n) - 1n;

function bad(item: string | number, why: string): never {
  throw fail('gpt', 'INVALID_ARGUMENT', `attribute ${JSON.stringify(item)} ${why}`);
}

function bitValue(item: string | number, bit: number): bigint {
  if (!Number.isInteger(bit) || bit < 0 || bit > 63) bad(item, 'is not a bit number 0-63');
  return 1n << BigInt(bit);
}

/** Names, bit numbers (0-63), 'bitN', or '0x...' raw hex -> the 64-bit attribute value. */
export function encodeGptAttributes(items: ReadonlyArray<string | number>): bigint {
  let value = 0n;
  for (const item of items) {
    if (typeof item === 'number') {
      value |= bitValue(item, item);
      continue;
    }
    if (typeof item !== 'string') bad(String(item), 'is neither a name nor a number');
    const text = item.trim().toLowerCase();
    if (Object.prototype.hasOwnProperty.call(GPT_ATTRIBUTE_BITS, text)) {
      value |= 1n << BigInt(GPT_ATTRIBUTE_BITS[text]);
    } else if (/^bit\d{1,2}$/.test(text)) {
      value |= bitValue(item, Number(text.slice(3)));
    } else if (/^\d{1,2}$/.test(text)) {
      value |= bitValue(item, Number(text));
    } else if (/^0x[0-9a-f]{1,16}$/.test(text)) {
      value |= BigInt(text);
    } else {
      bad(item, `is not a known attribute (${Object.keys(GPT_ATTRIBUTE_BITS).join(', ')}, bitN or 0x hex)`);
    }
  }
  return value;
}

/** Attribute value -> names for named bits, 'bitN' for the others, in bit order. */
export function gptAttributeNames(bits: bigint): string[] {
  const masked = bits & U64_MASK;
  const names: string[] = [];
  for (let bit = 0; bit < 64; bit++) {
    if ((masked >> BigInt(bit)) & 1n) names.push(NAME_BY_BIT.get(bit) ?? `bit${bit}`);
  }
  return names;
}
