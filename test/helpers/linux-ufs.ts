/**
 * An independent UFS reader: Linux's ufs driver, in Debian's 6.1 kernel booted under QEMU (TCG)
 * with a busybox initramfs built here (shared/FACTS.md, "Linux's UFS driver as a reader under
 * QEMU"). The image is attached read-only; /init mounts it read-only and prints one record per
 * path between BEGIN/END markers on the serial console, then powers off.
 *
 * Needs: the kernel and modules extracted (.ci/run does it) under $DISKMINT_LINUX_CACHE or
 * /var/cache/diskmint-linux (any `<dir>/boot/vmlinuz-*` with `<dir>/lib/modules/<ver>/`),
 * busybox-static (/bin/busybox), cpio, gzip and qemu-system-x86_64.
 *
 * Limits of the listing: names holding a tab or a newline cannot be told apart in it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FileTree, TreeNode, TreeNodeKind } from '../../src/fs/tree/types.js';
import { havePeer } from './peer.js';

export const LINUX_CACHE = process.env.DISKMINT_LINUX_CACHE ?? '/var/cache/diskmint-linux';
const BUSYBOX = '/bin/busybox';
const BEGIN = '==DISKMINT-UFS-LISTING-BEGIN==';
const END = '==DISKMINT-UFS-LISTING-END==';
const FAILED = '==DISKMINT-UFS-MOUNT-FAILED==';

/** Module load order matters: each needs the ones before it (FACTS). */
const MODULES = [
  'drivers/virtio/virtio_ring.ko',
  'drivers/virtio/virtio.ko',
  'drivers/virtio/virtio_pci_modern_dev.ko',
  'drivers/virtio/virtio_pci_legacy_dev.ko',
  'drivers/virtio/virtio_pci.ko',
  'drivers/block/virtio_blk.ko',
  'fs/ufs/ufs.ko',
];

export interface LinuxKernel {
  vmlinuz: string;
  /** `lib/modules/<version>/kernel`. */
  moduleDir: string;
}

/** The extracted kernel in the cache, or undefined. */
export function findLinuxKernel(cache = LINUX_CACHE): LinuxKernel | undefined {
  if (!existsSync(cache)) return undefined;
  for (const entry of readdirSync(cache).sort()) {
    const boot = join(cache, entry, 'boot');
    if (!existsSync(boot)) continue;
    const image = readdirSync(boot).find((n) => n.startsWith('vmlinuz-'));
    if (!image) continue;
    const moduleDir = join(cache, entry, 'lib', 'modules', image.slice('vmlinuz-'.length), 'kernel');
    if (MODULES.every((m) => existsSync(join(moduleDir, m)))) return { vmlinuz: join(boot, image), moduleDir };
  }
  return undefined;
}

/**
 * True when everything the harness needs is here. When something is missing: throws under CI
 * (naming the Debian package), else warns and returns false so the caller can `ctx.skip()`.
 */
export function requireLinuxUfs(): boolean {
  const missing: string[] = [];
  if (!findLinuxKernel())
    missing.push(`a Debian kernel extracted under ${LINUX_CACHE} (apt-get download linux-image-6.1.0-NN-amd64; dpkg-deb -x; see .ci/run)`);
  if (!existsSync(BUSYBOX)) missing.push(`${BUSYBOX} (apt-get install busybox-static)`);
  if (!havePeer('cpio')) missing.push('cpio (apt-get install cpio)');
  if (!havePeer('gzip')) missing.push('gzip (apt-get install gzip)');
  if (!havePeer('qemu-system-x86_64')) missing.push('qemu-system-x86_64 (apt-get install qemu-system-x86)');
  if (missing.length === 0) return true;
  const msg = `the Linux UFS reader needs ${missing.join(', ')}`;
  if (process.env.CI === 'true' || process.env.CI === '1') throw new Error(msg);
  console.warn(`skipping: ${msg}`);
  return false;
}

/** What Linux sees at one path of the mounted file system. */
export interface LinuxUfsRecord {
  /** Relative, '' for the root, as in TreeNode.path. */
  path: string;
  kind: TreeNodeKind;
  /** Permission bits with setuid/setgid/sticky. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  nlink: number;
  ino: number;
  mtime: number;
  sha256?: string;
  target?: string;
  device?: { major: number; minor: number };
}

// The /init script: busybox's stat/sha256sum/readlink in batches (one process per file would
// take minutes under TCG for 10,000 files).
const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
for m in ${MODULES.map((m) => `/modules/${m.split('/').pop()}`).join(' ')}; do insmod $m || echo "insmod $m failed"; done
t=$(sed -n 's/.*diskmint.ufstype=\\([a-z0-9]*\\).*/\\1/p' /proc/cmdline)
i=0; while [ ! -b /dev/vda ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
if mount -r -t ufs -o ufstype=$t /dev/vda /mnt; then
  cd /mnt
  echo ${BEGIN}
  find . -exec stat -c 'S	%f	%u	%g	%s	%h	%t	%T	%Y	%i	%n' {} +
  find . -type f -exec sha256sum {} + | sed 's/^/H	/'
  find . -type l | while IFS= read -r f; do printf 'L	%s	%s\\n' "$f" "$(readlink "$f")"; done
  echo ${END}
  cd /
  umount /mnt
else
  echo ${FAILED}
  dmesg | tail -20
fi
poweroff -f
`;

async function buildInitramfs(kernel: LinuxKernel, dir: string): Promise<string> {
  const root = join(dir, 'root');
  for (const d of ['bin', 'dev', 'proc', 'mnt', 'modules']) mkdirSync(join(root, d), { recursive: true });
  copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
  chmodSync(join(root, 'bin', 'busybox'), 0o755);
  for (const m of MODULES) copyFileSync(join(kernel.moduleDir, m), join(root, 'modules', m.split('/').pop()!));
  writeFileSync(join(root, 'init'), INIT, { mode: 0o755 });
  const out = join(dir, 'initramfs.cpio.gz');
  const r = spawnSync('sh', ['-c', `find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1 > '${out}'`], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building the initramfs failed: ${r.stderr}`);
  return out;
}

export interface LinuxListing {
  records: LinuxUfsRecord[];
  /** The whole console log (for failure messages). */
  log: string;
}

/**
 * Boot Linux, mount `imagePath` (a raw UFS file system, attached read-only) with `ufstype`
 * (`ufs2`; `44bsd` for UFS1) and list it. Throws with the console log when the mount fails
 * or the listing does not complete within `timeoutMs`.
 */
export async function listUfsWithLinux(imagePath: string, opts: { ufstype: 'ufs2' | '44bsd'; timeoutMs?: number }): Promise<LinuxListing> {
  const kernel = findLinuxKernel();
  if (!kernel) throw new Error(`no extracted kernel under ${LINUX_CACHE}`);
  const dir = await mkdtemp(join(tmpdir(), 'diskmint-linux-ufs-'));
  try {
    const initrd = await buildInitramfs(kernel, dir);
    const args = [
      ...['-accel', 'tcg', '-m', '256', '-nographic', '-no-reboot', '-nodefaults', '-nic', 'none', '-serial', 'stdio', '-monitor', 'none'],
      ...['-kernel', kernel.vmlinuz, '-initrd', initrd],
      ...['-append', `console=ttyS0 quiet loglevel=1 panic=-1 diskmint.ufstype=${opts.ufstype}`],
      ...['-drive', `file=${imagePath},format=raw,if=virtio,readonly=on`],
    ];
    const log = await runQemu(args, opts.timeoutMs ?? 180_000);
    const begin = log.indexOf(BEGIN);
    const end = log.indexOf(END);
    if (begin < 0 || end < begin) {
      const why = log.includes(FAILED) ? 'Linux could not mount the image' : 'the listing did not complete';
      throw new Error(`${why} (ufstype=${opts.ufstype}, ${imagePath}); console:\n${log.slice(-4000)}`);
    }
    return { records: parseListing(log.slice(begin + BEGIN.length, end)), log };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function runQemu(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c: string) => (log += c));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal) reject(new Error(`qemu killed (${signal}) after ${timeoutMs} ms; console:\n${log.slice(-4000)}\n${stderr}`));
      else if (code !== 0) reject(new Error(`qemu exited ${code}: ${stderr}\n${log.slice(-2000)}`));
      else resolve(log.replace(/\r/g, ''));
    });
  });
}

const KIND_OF_TYPE: Record<number, TreeNodeKind> = {
  0o140000: 'socket',
  0o120000: 'symlink',
  0o100000: 'file',
  0o060000: 'block',
  0o040000: 'dir',
  0o020000: 'char',
  0o010000: 'fifo',
};

const relative = (p: string) => (p === '.' ? '' : p.replace(/^\.\//, ''));

/** The records of a listing's text (between the markers). */
export function parseListing(text: string): LinuxUfsRecord[] {
  const byPath = new Map<string, LinuxUfsRecord>();
  const lines = text.split('\n').filter((l) => /^[SHL]\t/.test(l));
  for (const line of lines.filter((l) => l.startsWith('S\t'))) {
    const f = line.split('\t');
    const rawMode = parseInt(f[1], 16);
    const kind = KIND_OF_TYPE[rawMode & 0o170000];
    if (!kind) throw new Error(`unknown file type in listing line ${JSON.stringify(line)}`);
    const rec: LinuxUfsRecord = {
      path: relative(f.slice(10).join('\t')),
      kind,
      mode: rawMode & 0o7777,
      uid: Number(f[2]),
      gid: Number(f[3]),
      size: Number(f[4]),
      nlink: Number(f[5]),
      mtime: Number(f[8]),
      ino: Number(f[9]),
    };
    if (kind === 'char' || kind === 'block') rec.device = { major: parseInt(f[6], 16), minor: parseInt(f[7], 16) };
    byPath.set(rec.path, rec);
  }
  for (const line of lines) {
    if (line.startsWith('H\t')) {
      const m = /^H\t([0-9a-f]{64}) {2}(.*)$/.exec(line);
      const rec = m && byPath.get(relative(m[2]));
      if (!rec) throw new Error(`listing line ${JSON.stringify(line)} names no listed file`);
      rec.sha256 = m[1];
    } else if (line.startsWith('L\t')) {
      const [, path, ...target] = line.split('\t');
      const rec = byPath.get(relative(path));
      if (!rec) throw new Error(`listing line ${JSON.stringify(line)} names no listed symlink`);
      rec.target = target.join('\t');
    }
  }
  return [...byPath.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * Differences between a tree and what Linux listed, one sentence each ([] when they agree):
 * the same paths, kinds, modes, owners, sizes, link targets, device numbers; file contents
 * by sha256 (`sha256Of(node)` gives the tree's side, from its ContentRef); hard links share
 * an inode, and every path's link count is what the tree implies (directories: 2 + subfolders).
 */
export function compareTreeWithListing(
  tree: FileTree,
  records: LinuxUfsRecord[],
  sha256Of: (node: TreeNode) => string,
  opts: { mtime?: boolean } = {},
): string[] {
  const out: string[] = [];
  const listed = new Map(records.map((r) => [r.path, r]));
  const nodes = new Map(tree.nodes.map((n) => [n.path, n]));
  for (const r of records) if (!nodes.has(r.path)) out.push(`Linux lists ${JSON.stringify(r.path)}, which the tree does not hold`);
  const links = new Map<string, number>();
  for (const n of tree.nodes) {
    const owner = n.hardlinkOf ?? n.path;
    links.set(owner, (links.get(owner) ?? 0) + 1);
    if (n.kind === 'dir' && n.path !== '') {
      const parent = n.path.includes('/') ? n.path.slice(0, n.path.lastIndexOf('/')) : '';
      links.set(parent, (links.get(parent) ?? 0) + 1);
    }
    if (n.kind === 'dir') links.set(n.path, (links.get(n.path) ?? 0) + 1); // its own '.'
  }
  for (const n of tree.nodes) {
    const r = listed.get(n.path);
    const at = JSON.stringify(n.path);
    if (!r) {
      out.push(`${at} is in the tree but Linux does not list it`);
      continue;
    }
    const base = n.hardlinkOf ? nodes.get(n.hardlinkOf)! : n;
    const want: Array<[string, unknown, unknown]> = [
      ['kind', base.kind, r.kind],
      ['mode', base.mode.toString(8), r.mode.toString(8)],
      ['uid', base.uid, r.uid],
      ['gid', base.gid, r.gid],
      ['link count', links.get(base.path), r.nlink],
    ];
    if (base.kind === 'file' || base.kind === 'symlink') want.push(['size', base.size, r.size]);
    if (base.kind === 'symlink') want.push(['target', base.target, r.target]);
    if (base.kind === 'file') want.push(['sha256', sha256Of(base), r.sha256]);
    if (base.device) want.push(['device', `${base.device.major},${base.device.minor}`, r.device && `${r.device.major},${r.device.minor}`]);
    if (opts.mtime && base.kind !== 'symlink') want.push(['mtime', base.mtime.sec, r.mtime]);
    if (n.hardlinkOf) want.push(['inode (hard link)', listed.get(n.hardlinkOf)?.ino, r.ino]);
    for (const [what, expected, got] of want)
      if (expected !== got) out.push(`${at}: ${what} ${String(expected)} in the tree, ${String(got)} as Linux reads it`);
  }
  return out;
}
