/**
 * flash's refusal rules without a device (the loop-device tests cover them on real devices where
 * the kernel allows; a kernel that scans no loop partitions cannot make a partition device): the
 * target as inspectTarget describes it, and what refusalFor says of it.
 */
import { describe, expect, it } from 'vitest';
import { refusalFor, type FlashTarget } from '../../src/ops/flash/device.js';

const MiB = 1 << 20;
const block = (over: Partial<FlashTarget>): FlashTarget => ({
  path: '/dev/sdz',
  kind: 'block',
  size: 64 * MiB,
  name: 'sdz',
  isPartition: false,
  inUse: [],
  ...over,
});

describe('refusalFor', () => {
  it('a partition, for an image holding a partition table: give the whole disk', () => {
    expect(refusalFor(block({ path: '/dev/sdz1', name: 'sdz1', isPartition: true }), 32 * MiB, true)).toMatch(
      /is a partition but the image holds a partition table: give the whole disk; nothing was written/,
    );
  });

  it('a whole disk, for a bare file system; a partition takes it', () => {
    expect(refusalFor(block({}), 32 * MiB, false)).toMatch(/is a whole disk but the image holds no partition table/);
    expect(refusalFor(block({ isPartition: true }), 32 * MiB, false)).toBeUndefined();
  });

  it('in use, or smaller than the image, comes first; a free disk large enough is taken', () => {
    expect(refusalFor(block({ inUse: ['/dev/sdz1 mounted on /mnt'] }), 32 * MiB, true)).toMatch(/is in use \(\/dev\/sdz1 mounted on \/mnt\): unmount it first/);
    expect(refusalFor(block({ size: 16 * MiB }), 32 * MiB, true)).toMatch(/is smaller than the image \(33554432 bytes needed, it holds 16777216\)/);
    expect(refusalFor(block({}), 64 * MiB, true)).toBeUndefined();
  });

  it('a regular file standing in for a device is never a partition or a whole disk', () => {
    expect(refusalFor({ path: '/tmp/x', kind: 'file', size: 64 * MiB, isPartition: false, inUse: [] }, 32 * MiB, false)).toBeUndefined();
  });
});
