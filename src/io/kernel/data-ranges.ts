/**
 * Where an open file holds data, as the kernel keeps it: lseek(2) SEEK_DATA to the next byte of
 * data, SEEK_HOLE to the hole after it (the end of the file counts as a hole). No byte is read,
 * so a 142 GiB sparse file holding 32 KiB answers in a few calls. Linux answers for every file
 * system (one without holes reports the whole file as data) and for block devices.
 */
import { constants } from 'node:os';
import { DiskmintError } from '../../model/errors.js';
import { ENXIO, SEEK_DATA, SEEK_HOLE, type KernelIo } from './ffi.js';

export interface Range {
  offset: number;
  length: number;
}

/**
 * The kernel calls when they can tell where `fd` holds data (koffi loaded, lseek answers
 * SEEK_HOLE on it); undefined when the caller has to read the file to find out.
 */
export function seekDataIo(fd: number, io: KernelIo | undefined): KernelIo | undefined {
  if (!io) return undefined;
  const hole = io.seek(fd, 0, SEEK_HOLE);
  return hole >= 0 || hole === -ENXIO ? io : undefined; // ENXIO: an empty file; EINVAL: no SEEK_HOLE here
}

/**
 * The data ranges of `fd` inside [start, end), ascending and disjoint, clipped to them. A file that
 * changes meanwhile can only make a range longer than its data, never skip data the walk saw.
 */
export function* seekDataRanges(io: KernelIo, fd: number, start: number, end: number, path: string): Generator<Range> {
  for (let at = start; at < end;) {
    const data = io.seek(fd, at, SEEK_DATA);
    if (data === -ENXIO) return; // no data at or after `at` (lseek(2): ENXIO past the last data)
    if (data < 0) throw seekFailed(path, 'SEEK_DATA', at, -data);
    if (data >= end) return;
    let hole = io.seek(fd, data, SEEK_HOLE);
    if (hole < 0 && hole !== -ENXIO) throw seekFailed(path, 'SEEK_HOLE', data, -hole);
    if (hole <= data) hole = end; // the file shrank or changed under us: data up to `end`, as a reader would assume
    hole = Math.min(hole, end);
    yield { offset: data, length: hole - data };
    at = hole;
  }
}

function seekFailed(path: string, whence: string, offset: number, errno: number): DiskmintError {
  const name = Object.entries(constants.errno).find(([, n]) => n === errno)?.[0] ?? `errno ${errno}`;
  return new DiskmintError('IO', `finding the data of ${path} failed: lseek ${whence} at byte ${offset}: ${name}`);
}
