/**
 * The two kernel calls Node does not offer: lseek(2) with SEEK_DATA / SEEK_HOLE (where a file
 * holds data) and copy_file_range(2) (a copy inside the kernel, a reflink where the file system
 * shares extents). They are reached through koffi, an optional dependency that ships prebuilt
 * binaries inside its npm package, loaded on first use (never at start-up): when it is missing,
 * when the platform is not Linux, or with DISKMINT_PURE_IO=1, `kernelIo()` answers undefined and
 * callers read and test for zeros as before.
 */
import { createRequire } from 'node:module';

/** lseek whence values on Linux (include/uapi/linux/fs.h: SEEK_DATA 3, SEEK_HOLE 4). */
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;

/** Linux errno values (include/uapi/asm-generic/errno-base.h): ENXIO, no data past the offset. */
export const ENXIO = 6;
const EBADF = 9;

export interface KernelIo {
  /** lseek(fd, offset, whence): the resulting offset, or -errno when the call failed. */
  seek(fd: number, offset: number, whence: typeof SEEK_DATA | typeof SEEK_HOLE): number;
  /**
   * copy_file_range(src, &srcOffset, dst, &dstOffset, length, 0) on a worker thread: bytes copied
   * (0 at the source's end), or -errno; undefined when this C library has no copy_file_range.
   */
  copyFileRange?(srcFd: number, srcOffset: number, dstFd: number, dstOffset: number, length: number): Promise<number>;
  /**
   * ioctl(fd, BLKZEROOUT, {offset, length}) on a worker thread: the block device makes the range
   * read as zeros (REQ_OP_WRITE_ZEROES where it has it, else the kernel writes the zeros, no
   * user-space buffer); 0, or -errno (ENOTTY: not a block device).
   */
  zeroOut?(fd: number, offset: number, length: number): Promise<number>;
  /**
   * ioctl(fd, BLKDISCARD, {offset, length}) on a worker thread: the device may forget the range
   * (TRIM, UNMAP, an SD card's erase); what it then reads is the device's own (zeros, 0xFF, or
   * old bytes where a range does not cover whole erase units); 0, or -errno.
   */
  discard?(fd: number, offset: number, length: number): Promise<number>;
  /** ioctl(fd, BLKFLSBUF, 0): the block device's page cache dropped (a read then comes from the medium); 0, or -errno. */
  flushBuffers?(fd: number): Promise<number>;
}

/** include/uapi/linux/fs.h: BLKZEROOUT _IO(0x12, 127), its argument uint64_t[2] {start, length}. */
export const BLKZEROOUT = 0x127f;
/** include/uapi/linux/fs.h: BLKDISCARD _IO(0x12, 119), the same argument. */
export const BLKDISCARD = 0x1277;
/** include/uapi/linux/fs.h: BLKFLSBUF _IO(0x12, 97), no argument. */
export const BLKFLSBUF = 0x1261;

/** What diskmint uses of koffi (its own types are not needed: the package is optional). */
interface Koffi {
  load(path: null): { func(prototype: string): KoffiFunction };
  sizeof(type: string): number;
  errno(): number;
}
type KoffiFunction = ((...args: unknown[]) => unknown) & { async(...args: unknown[]): void };

/** How the package is loaded: require('koffi') beside this module (tests pass one that fails). */
export type KoffiLoader = () => unknown;

const defaultLoader: KoffiLoader = () => createRequire(import.meta.url)('koffi');

let loader: KoffiLoader = defaultLoader;
/** The loaded calls (undefined: unavailable); not tried yet while the outer value is undefined. */
let loaded: { io: KernelIo | undefined } | undefined;

/**
 * The kernel calls, or undefined when this process reads files the pure way: DISKMINT_PURE_IO=1
 * (read at each call, so tests can run both paths), not Linux, or koffi missing or unusable. The
 * package is loaded once, on the first call; a failure is silent (the pure path is the answer).
 */
export function kernelIo(): KernelIo | undefined {
  if (process.env.DISKMINT_PURE_IO === '1') return undefined;
  loaded ??= { io: load(loader) };
  return loaded.io;
}

/** Load through `load` from now on (tests: one that throws stands for koffi missing); no argument restores require('koffi'). */
export function useKoffiLoader(load: KoffiLoader = defaultLoader): void {
  loader = load;
  loaded = undefined;
}

function load(from: KoffiLoader): KernelIo | undefined {
  if (process.platform !== 'linux') return undefined; // the whence values and errnos above are Linux's
  try {
    const mod = from() as Koffi & { default?: Koffi };
    const koffi = typeof mod.load === 'function' ? mod : mod.default!;
    const libc = koffi.load(null); // the process itself: Node links the C library dynamically
    // off_t is 64 bits on 64-bit Linux; 32-bit C libraries name the 64-bit call lseek64.
    const lseek = libc.func(`int64_t ${koffi.sizeof('long') === 8 ? 'lseek' : 'lseek64'}(int fd, int64_t offset, int whence)`);
    const io: KernelIo = {
      seek(fd, offset, whence) {
        const at = Number(lseek(fd, offset, whence));
        return at >= 0 ? at : -koffi.errno();
      },
    };
    // A package that loads but cannot call (another ABI, a broken binary) is no package.
    if (io.seek(-1, 0, SEEK_HOLE) !== -EBADF) return undefined;
    const copy = optionalFunc(libc, 'intptr_t copy_file_range(int fd_in, int64_t *off_in, int fd_out, int64_t *off_out, size_t len, unsigned int flags)');
    if (copy) {
      io.copyFileRange = (srcFd, srcOffset, dstFd, dstOffset, length) =>
        new Promise((resolve, reject) => {
          // koffi runs an async call on a worker thread and sets errno to that thread's value
          // while the callback runs.
          copy.async(srcFd, [srcOffset], dstFd, [dstOffset], length, 0, (err: unknown, n: unknown) => {
            if (err) reject(err instanceof Error ? err : new Error(String(err)));
            else resolve(Number(n) >= 0 ? Number(n) : -koffi.errno());
          });
        });
    }
    // ioctl is variadic, but koffi runs only fixed prototypes on a worker thread; glibc's ioctl
    // takes its third argument as a pointer-sized value from the same register either way
    // (x86-64 and AArch64 Linux ABIs pass variadic and fixed integer arguments alike).
    const ioctl = optionalFunc(libc, 'int ioctl(int fd, unsigned long request, uint64_t *range)');
    if (ioctl) {
      const call = (fd: number, request: number, range: number[] | null) =>
        new Promise<number>((resolve, reject) => {
          ioctl.async(fd, request, range, (err: unknown, r: unknown) => {
            if (err) reject(err instanceof Error ? err : new Error(String(err)));
            else resolve(Number(r) === 0 ? 0 : -koffi.errno());
          });
        });
      io.zeroOut = (fd, offset, length) => call(fd, BLKZEROOUT, [offset, length]);
      io.discard = (fd, offset, length) => call(fd, BLKDISCARD, [offset, length]);
      io.flushBuffers = (fd) => call(fd, BLKFLSBUF, null);
    }
    return io;
  } catch {
    return undefined; // not installed, no binary for this platform, no lseek: the pure path
  }
}

function optionalFunc(libc: { func(prototype: string): KoffiFunction }, prototype: string): KoffiFunction | undefined {
  try {
    return libc.func(prototype);
  } catch {
    return undefined; // a C library older than copy_file_range (glibc < 2.27)
  }
}
