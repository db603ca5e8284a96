/** The container formats diskmint reads and writes, found by content (reading) or by name (writing). */
import { extname } from 'node:path';
import { DiskmintError } from '../model/errors.js';
import type { DiskReader } from '../model/disk-reader.js';
import type { ContainerFormat, ContainerHandler } from './types.js';
import { qcow2Handler } from './qcow2/handler.js';
import { vmdkHandler } from './vmdk/handler.js';
import { vhdHandler } from './vhd/handler.js';
import { vhdxHandler } from './vhdx/handler.js';
import { rawHandler } from './raw/handler.js';

/**
 * Every format, one line each. Detection order matters: formats with a magic at byte 0 first,
 * then VHD (footer at the end), and raw, which accepts any file, last.
 */
export const CONTAINER_HANDLERS: readonly ContainerHandler[] = [qcow2Handler, vhdxHandler, vmdkHandler, vhdHandler, rawHandler];

export const OUTPUT_FORMATS: readonly ContainerFormat[] = ['raw', 'qcow2', 'vmdk', 'vhd', 'vhdx'];

/** qemu-img's driver names and mkimg's format names map onto ours. */
const FORMAT_ALIASES: Record<string, ContainerFormat> = {
  raw: 'raw',
  img: 'raw',
  qcow2: 'qcow2',
  vmdk: 'vmdk',
  vhd: 'vhd',
  vpc: 'vhd',
  vhdx: 'vhdx',
};

/** The handler whose magic the file carries; raw when none does. */
export async function detectContainer(file: DiskReader): Promise<ContainerHandler> {
  for (const h of CONTAINER_HANDLERS) if (await h.detect(file)) return h;
  return rawHandler; // not reached: raw's detect accepts any file
}

export function handlerFor(format: ContainerFormat): ContainerHandler {
  const handler = CONTAINER_HANDLERS.find((h) => h.format === format);
  if (!handler) throw new DiskmintError('BAD_ARGUMENT', `no handler for format "${format}"`);
  return handler;
}

/** `-O name`, or else the output file's extension, else raw. */
export function outputFormatFor(name: string | undefined, outputPath: string): ContainerFormat {
  if (name !== undefined) {
    const f = Object.hasOwn(FORMAT_ALIASES, name.toLowerCase()) ? FORMAT_ALIASES[name.toLowerCase()] : undefined;
    if (!f) throw new DiskmintError('BAD_ARGUMENT', `unknown output format "${name}" (use ${OUTPUT_FORMATS.join(', ')})`);
    return f;
  }
  if (outputPath === '-') return 'raw';
  const ext = extname(outputPath).slice(1).toLowerCase();
  return CONTAINER_HANDLERS.find((h) => h.extensions.includes(`.${ext}`))?.format ?? 'raw';
}

/** Parse qemu-img style `-o key=value,key=value` (commas inside values doubled, as qemu does). */
export function parseOptionString(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = Object.create(null); // `__proto__=1` is a key like any other
  if (!text) return out;
  for (const part of text.replace(/,,/g, '\0').split(',')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).trim();
    const value = (eq < 0 ? 'on' : part.slice(eq + 1)).replace(/\0/g, ',');
    if (!key) throw new DiskmintError('BAD_ARGUMENT', `-o "${text}": an option has no name`);
    out[key] = value;
  }
  return out;
}
