/**
 * FreeBSD mkimg's qcow2 goldens read identically to `qemu-img convert -O raw` (sha256 from
 * peer-vectors/mkimg/README.md).
 */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { qcow2Handler } from '../../src/containers/qcow2/handler.js';
import { openWithHandler, readAll } from '../helpers/containers.js';
import { decodeGolden } from '../helpers/golden.js';
import { requirePeer, runPeerOk } from '../helpers/peer.js';
import { dir, sha256 } from './qcow2-helpers.js';

/** sha256 of `qemu-img convert -O raw` of each mkimg qcow2 golden (peer-vectors/mkimg/README.md). */
const MKIMG_QCOW2: Record<string, string> = {
  'img-1x1-512-ebr.qcow2.hex': 'cad2058775eba0943577be11a4e72a596737c4b5e17779609bf05d053f6dd3bf',
  'img-1x1-512-gpt.qcow2.hex': '1253b03b3052103f839fbea755a298b8a4ae7993a3e414c0420e7e30b363ed33',
  'img-63x255-4096-bsd.qcow2.hex': '2f2b91c6553d73aba48c4b2f8f23697888fd2bef919ac6d89e4aec7bc471fb60',
  'img-63x255-4096-gpt.qcow2.hex': '86ebf77fe5d0427b7123607b704a53b62c4e0898c4173582613c417a89a2fc31',
  'img-63x255-4096-mbr.qcow2.hex': 'cd31b2a7e651ef676cfbe28eb8711fb6b8c6cbfee1069bee2dd02ddcd78c9a63',
};

describe('FreeBSD mkimg qcow2 goldens', () => {
  for (const [name, expected] of Object.entries(MKIMG_QCOW2)) {
    it(`${name} reads as qemu-img convert -O raw does`, async () => {
      const path = decodeGolden(name, dir);
      const r = await openWithHandler(qcow2Handler, path);
      let ours: Buffer;
      try {
        ours = await readAll(r);
      } finally {
        await r.close();
      }
      expect(sha256(ours)).toBe(expected);
      if (requirePeer('qemu-img', 'qemu-utils')) {
        const out = `${path}.raw`;
        runPeerOk('qemu-img', ['convert', '-f', 'qcow2', '-O', 'raw', path, out]);
        expect(readFileSync(out).equals(ours)).toBe(true);
      }
    });
  }
});
