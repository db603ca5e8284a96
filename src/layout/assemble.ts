/**
 * Turn a plan into a virtual disk: the scheme's table bytes plus each partition's contents as
 * extents. Nothing is read or written here; file contents stay references until output.
 */
import { VirtualDisk } from '../model/extents.js';
import { schemeHandler } from '../schemes/registry.js';
import type { PlannedImage } from './plan.js';

export function assembleDisk(plan: PlannedImage): VirtualDisk {
  const ss = plan.sectorSize;
  const disk = new VirtualDisk(plan.totalSectors * ss);
  for (const t of schemeHandler(plan.scheme).encode(plan)) disk.placeBytes(t.offset, t.bytes);

  for (const p of plan.partitions) {
    const at = p.startLba * ss;
    const c = p.contents;
    if (c.kind === 'file') disk.place(at, c.size, { kind: 'file', path: c.path, offset: 0 });
    else if ((c.kind === 'fat' || c.kind === 'ufs') && c.volume) disk.place(at, c.volume.disk.size, { kind: 'disk', disk: c.volume.disk, offset: 0 });
    else if (c.kind === 'image') {
      const inner = assembleDisk(c.plan);
      disk.place(at, inner.size, { kind: 'disk', disk: inner, offset: 0 });
    }
  }
  return disk;
}
