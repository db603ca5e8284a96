/**
 * A system error during an in-place edit names the image (issue 17 item 7): ENOSPC and EIO are
 * injected into the edit's first write by strace (`-e inject=pwrite64:error=...`) while the
 * library's slotWrite runs in a child process; its message must say which file failed, for a raw
 * image and for a container edited in place.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { convertImage } from '../../src/index.js';
import { ROOT } from '../helpers/cli.js';
import { tempDir } from '../helpers/golden.js';
import { abImage } from '../helpers/ab-image.js';
import { requirePeer } from '../helpers/peer.js';

const LIBRARY = join(ROOT, 'dist', 'src', 'index.js');

/** Run slotWrite(img, 'os2', data) in a child under strace, failing its first pwrite64 with `errno`; return what it printed. */
function slotWriteFailing(img: string, data: string, errno: string): string {
  const script = `import(${JSON.stringify(LIBRARY)}).then((m) => m.slotWrite(${JSON.stringify(img)}, 'os2', ${JSON.stringify(data)})).then(() => console.log('no error'), (e) => console.log(e.constructor.name + ': ' + e.message));`;
  const r = spawnSync(
    'strace',
    [
      '-f',
      '-qq',
      '-o',
      '/dev/null',
      '-e',
      'trace=pwrite64',
      '-e',
      `inject=pwrite64:error=${errno}:when=1`,
      process.execPath,
      '--input-type=module',
      '-e',
      script,
    ],
    {
      encoding: 'utf8',
      env: { ...process.env, UV_THREADPOOL_SIZE: '1' }, // strace counts per thread: one I/O thread makes when=1 the first write
    },
  );
  return r.stdout + r.stderr;
}

describe('a failed write names the image', () => {
  for (const format of ['raw', 'qcow2'] as const) {
    for (const errno of ['ENOSPC', 'EIO']) {
      it(`${format}: ${errno}`, async () => {
        requirePeer('strace', 'strace');
        const dir = tempDir('diskmint-ioerr-');
        const raw = join(dir, 'ab.img');
        await abImage(dir, basename(raw));
        const img = format === 'raw' ? raw : join(dir, 'ab.qcow2');
        if (format !== 'raw') await convertImage(raw, img, { format });
        const data = join(dir, 'os.bin');
        writeFileSync(data, Buffer.alloc(1 << 20, 0x77));
        const out = slotWriteFailing(img, data, errno);
        expect(out).toContain(`DiskmintError: writing ${img} failed: ${errno}`);
      });
    }
  }
});
