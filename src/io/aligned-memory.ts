/**
 * Page-aligned memory for direct I/O (O_DIRECT wants the buffer's address aligned to the
 * device's logical block). Node gives no way to ask for an aligned ArrayBuffer, but a
 * WebAssembly memory is one mapping of whole 64 KiB pages (V8 reserves it with mmap), so its
 * first byte sits on a page boundary. Buffers made here are remembered, so a writer can tell
 * that a view it was handed may go to the device as it is, without a copy into a staging buffer.
 */

/** The alignment direct I/O needs here: the page size, a multiple of every common logical block (512, 4096). */
export const PAGE_ALIGN = 4096;
/** WebAssembly's page (the memory grows by these). */
const WASM_PAGE = 65536;

const alignedBuffers = new WeakSet<ArrayBufferLike>();

/** `bytes` bytes of zeroed memory whose first byte is page-aligned. */
export function pageAlignedBuffer(bytes: number): Uint8Array {
  const memory = new WebAssembly.Memory({ initial: Math.max(1, Math.ceil(bytes / WASM_PAGE)) });
  alignedBuffers.add(memory.buffer);
  return new Uint8Array(memory.buffer, 0, bytes);
}

/** True when `view` starts on a page boundary of memory from pageAlignedBuffer. */
export function isPageAligned(view: Uint8Array): boolean {
  return view.byteOffset % PAGE_ALIGN === 0 && alignedBuffers.has(view.buffer);
}
