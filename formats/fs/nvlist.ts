/**
 * XDR-encoded nvlists as OpenZFS packs them: the codec's entry (types in nvlist-types.ts, encoder in
 * nvlist-encode.ts, decoder in nvlist-decode.ts) and helpers to build and read lists.
 */
import { NV_UNIQUE_NAME, type NvPair, type NvList } from './nvlist-types.js';

export { NV_ENCODE_XDR, NV_UNIQUE_NAME, NV_UNIQUE_NAME_TYPE, NV_TYPES } from './nvlist-types.js';
export type { NvType, NvValue, NvPair, NvList } from './nvlist-types.js';
export { encodeNvlist } from './nvlist-encode.js';
export { decodeNvlist } from './nvlist-decode.js';

export function nvlist(pairs: NvPair[] = [], flags = NV_UNIQUE_NAME): NvList {
  return { version: 0, flags, pairs };
}

export function nvFind(list: NvList, name: string): NvPair | undefined {
  return list.pairs.find((p) => p.name === name);
}

export function nvUint64(list: NvList, name: string): bigint | undefined {
  const p = nvFind(list, name);
  return p?.type === 'uint64' ? p.value : undefined;
}

export function nvString(list: NvList, name: string): string | undefined {
  const p = nvFind(list, name);
  return p?.type === 'string' ? p.value : undefined;
}

export function nvChild(list: NvList, name: string): NvList | undefined {
  const p = nvFind(list, name);
  return p?.type === 'nvlist' ? p.value : undefined;
}

/** nvlist_add_* on a unique-name list: any pair of that name goes, the new one is appended. */
export function nvAdd(list: NvList, pair: NvPair): NvList {
  return { ...list, pairs: [...list.pairs.filter((p) => p.name !== pair.name), pair] };
}

export function nvRemove(list: NvList, name: string): NvList {
  return { ...list, pairs: list.pairs.filter((p) => p.name !== name) };
}

/** A plain JSON-able view: bigints as decimal strings, lists as objects (later names win). */
export function nvToJson(list: NvList): Record<string, unknown> {
  const conv = (p: NvPair): unknown => {
    switch (p.type) {
      case 'boolean':
        return true;
      case 'nvlist':
        return nvToJson(p.value);
      case 'nvlist_array':
        return p.value.map(nvToJson);
      case 'int64':
      case 'uint64':
      case 'hrtime':
        return p.value.toString();
      case 'int64_array':
      case 'uint64_array':
        return p.value.map(String);
      default:
        return p.value;
    }
  };
  return Object.fromEntries(list.pairs.map((p) => [p.name, conv(p)]));
}
