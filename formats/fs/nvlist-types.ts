/**
 * XDR-encoded nvlists (types and tables; encoder in nvlist-encode.ts, decoder in nvlist-decode.ts) as OpenZFS packs them (`module/nvpair/nvpair.c`, nvs_xdr_*; type numbers
 * from `include/sys/nvpair.h` data_type_t). Layout of a packed list:
 *   header (4 bytes: encoding 1 = XDR, host endian, 0, 0)            -- top level only
 *   int32 nvl_version, uint32 nvl_nvflag                              -- every (embedded) list
 *   pairs: int32 encoded size, int32 decoded (native) size, string name, int32 type,
 *          int32 nelem, value                                         -- repeated
 *   int32 0, int32 0                                                  -- end of the list
 * All integers are big-endian (XDR); strings are a uint32 length then bytes padded to 4.
 * The parser bounds every length and count by the bytes that remain, so hostile input gives a
 * FormatError, never a crash or a large allocation.
 */

export const FORMAT = 'nvlist';
/** nvpair.h: NV_ENCODE_XDR. */
export const NV_ENCODE_XDR = 1;
/** nvpair.h: NV_UNIQUE_NAME, NV_UNIQUE_NAME_TYPE. */
export const NV_UNIQUE_NAME = 1;
export const NV_UNIQUE_NAME_TYPE = 2;
/** Deepest nesting of embedded lists accepted (OpenZFS limits recursion similarly). */
export const MAX_DEPTH = 64;

/** data_type_t numbers (nvpair.h). */
export const NV_TYPES = {
  boolean: 1,
  byte: 2,
  int16: 3,
  uint16: 4,
  int32: 5,
  uint32: 6,
  int64: 7,
  uint64: 8,
  string: 9,
  byte_array: 10,
  int16_array: 11,
  uint16_array: 12,
  int32_array: 13,
  uint32_array: 14,
  int64_array: 15,
  uint64_array: 16,
  string_array: 17,
  hrtime: 18,
  nvlist: 19,
  nvlist_array: 20,
  boolean_value: 21,
  int8: 22,
  uint8: 23,
  boolean_array: 24,
  int8_array: 25,
  uint8_array: 26,
  double: 27,
} as const;
export type NvType = keyof typeof NV_TYPES;
export const TYPE_NAMES = new Map<number, NvType>(Object.entries(NV_TYPES).map(([k, v]) => [v, k as NvType]));

export type SmallInt = 'byte' | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32';
export type SmallIntArray = 'byte_array' | 'int8_array' | 'uint8_array' | 'int16_array' | 'uint16_array' | 'int32_array' | 'uint32_array';

export type NvValue =
  | { type: 'boolean' }
  | { type: 'boolean_value'; value: boolean }
  | { type: SmallInt; value: number }
  | { type: 'int64' | 'uint64' | 'hrtime'; value: bigint }
  | { type: 'double'; value: number }
  | { type: 'string'; value: string }
  | { type: 'boolean_array'; value: boolean[] }
  | { type: SmallIntArray; value: number[] }
  | { type: 'int64_array' | 'uint64_array'; value: bigint[] }
  | { type: 'string_array'; value: string[] }
  | { type: 'nvlist'; value: NvList }
  | { type: 'nvlist_array'; value: NvList[] };

export type NvPair = { name: string } & NvValue;

export interface NvList {
  /** nvl_version (NV_VERSION = 0). */
  version: number;
  /** nvl_nvflag: NV_UNIQUE_NAME (1) for every list ZFS writes. */
  flags: number;
  pairs: NvPair[];
}

/** Integer ranges of the small types (their C types). */
export const RANGES: Record<SmallInt, [number, number]> = {
  byte: [0, 0xff],
  uint8: [0, 0xff],
  int8: [-0x80, 0x7f],
  int16: [-0x8000, 0x7fff],
  uint16: [0, 0xffff],
  int32: [-0x80000000, 0x7fffffff],
  uint32: [0, 0xffffffff],
};
export const ELEMENT: Record<SmallIntArray, SmallInt> = {
  byte_array: 'byte',
  int8_array: 'int8',
  uint8_array: 'uint8',
  int16_array: 'int16',
  uint16_array: 'uint16',
  int32_array: 'int32',
  uint32_array: 'uint32',
};
/** Native sizes of one element (i_get_value_size in nvpair.c): what the decoded-size field counts. */
export const NATIVE_SIZE: Record<NvType, number> = {
  boolean: 0,
  boolean_value: 4,
  byte: 1,
  int8: 1,
  uint8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  int64: 8,
  uint64: 8,
  hrtime: 8,
  double: 8,
  string: 0,
  byte_array: 1,
  int8_array: 1,
  uint8_array: 1,
  int16_array: 2,
  uint16_array: 2,
  int32_array: 4,
  uint32_array: 4,
  boolean_array: 4,
  int64_array: 8,
  uint64_array: 8,
  string_array: 8,
  nvlist: 24,
  nvlist_array: 32,
};

export const utf8 = new TextEncoder();
export const utf8Strict = new TextDecoder('utf-8', { fatal: true });

/* ------------------------------------------------------------------ sizes */

export const align4 = (n: number) => (n + 3) & ~3;
export const align8 = (n: number) => (n + 7) & ~7;
export const byteLength = (s: string) => utf8.encode(s).length;
