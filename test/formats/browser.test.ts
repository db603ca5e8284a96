/**
 * formats/ runs in a browser: formats/index.ts bundled by esbuild for the browser (no Node
 * built-ins, no Buffer, no process: the bundle would not load otherwise), loaded into headless
 * Chromium (Debian package "chromium", driven by playwright-core, no network), decodes a GPT
 * image and a qcow2 header diskmint built here exactly as Node does: the same calls give the
 * same JSON on both sides.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import * as Formats from '../../formats/index.js';
import { buildImage, type Layout } from '../../src/index.js';
import { tempDir } from '../helpers/golden.js';
import { requirePeer } from '../helpers/peer.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const LAYOUT: Layout = {
  scheme: 'gpt',
  size: '8M',
  seed: 'browser',
  partitions: [
    { type: 'efi', label: 'EFI system', size: '2M' },
    { type: 'freebsd-ufs', label: 'os1 \u00e9\u4e16', size: '2M', attributes: ['bootme'] },
    { type: 'linux-data', label: 'data', size: 'rest' },
  ],
};

/**
 * The same calls on both sides: F is formats/index.ts (imported in Node, the bundle's global
 * in the page). Plain JS inside, since its source text is what runs in the page.
 */
function decodeAll(F: typeof Formats, gpt: Uint8Array, qcow: Uint8Array): string {
  const header = F.decodeGptHeader(gpt.subarray(512, 1024));
  const table = F.decodeGptEntries(gpt.subarray(header.entriesLba * 512), header);
  const typeNames = table.entries.map((e) => F.gptTypeName(e.typeGuid));
  const attributes = table.entries.map((e) => F.gptAttributeNames(e.attributes));
  const mbr = F.decodeMbrSector(gpt.subarray(0, 512));
  const qcow2 = F.decodeQcow2Header(qcow);
  const extensions = F.decodeQcow2Extensions(qcow, qcow2.headerLength);
  const crc = [F.crc32(gpt), F.crc32c(qcow)];
  let refused = '';
  try {
    F.decodeGptHeader(new Uint8Array(512));
  } catch (e) {
    refused = [e instanceof F.FormatError, (e as Formats.FormatError).name, (e as Formats.FormatError).code, (e as Formats.FormatError).format].join(' ');
  }
  const all = { header, table, typeNames, attributes, mbr, qcow2, extensions, crc, refused };
  return JSON.stringify(all, (_key, v) => (typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? Array.from(v) : v));
}

describe('formats/ in a browser', () => {
  it('decodes a GPT image and a qcow2 header in headless Chromium exactly as in Node', async (ctx) => {
    if (!requirePeer('chromium', 'chromium')) {
      ctx.skip();
      return;
    }
    const dir = tempDir();
    await buildImage(LAYOUT, { output: join(dir, 'disk.img') });
    await buildImage(LAYOUT, { output: join(dir, 'disk.qcow2') });
    const gpt = new Uint8Array(readFileSync(join(dir, 'disk.img')).subarray(0, 64 * 1024));
    const qcow = new Uint8Array(readFileSync(join(dir, 'disk.qcow2')).subarray(0, 64 * 1024));
    const inNode = decodeAll(Formats, gpt, qcow);
    // The Node side must itself be meaningful: three named partitions, one of them bootme.
    const parsed = JSON.parse(inNode);
    expect(parsed.table.entries.map((e: { name: string }) => e.name)).toEqual(['EFI system', 'os1 \u00e9\u4e16', 'data']);
    expect(parsed.typeNames).toEqual(['efi', 'freebsd-ufs', 'linux-data']);
    expect(parsed.attributes[1]).toContain('bootme');
    expect(parsed.table.crcValid).toBe(true);
    expect(parsed.qcow2.size).toBe(8 * 1024 * 1024);
    expect(parsed.refused).toBe('true FormatError BAD_MAGIC gpt');

    const bundle = await build({
      entryPoints: [join(import.meta.dirname, '../../formats/index.ts')],
      bundle: true,
      platform: 'browser',
      format: 'iife',
      globalName: 'diskmintFormats',
      write: false,
      logLevel: 'silent',
    });
    const code = bundle.outputFiles[0].text;
    expect(code).not.toMatch(/require\(["']node:|\bBuffer\.|process\.env/);

    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.setContent('<!doctype html><title>diskmint formats</title>');
      await page.addScriptTag({ content: code });
      const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
      const inPage = await page.evaluate(
        `(() => {
          const bytes = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
          const decodeAll = ${decodeAll.toString()};
          return decodeAll(self.diskmintFormats, bytes(${JSON.stringify(b64(gpt))}), bytes(${JSON.stringify(b64(qcow))}));
        })()`,
      );
      expect(errors).toEqual([]);
      expect(inPage).toBe(inNode);
    } finally {
      await browser.close();
    }
  });
});
