/**
 * VMDK: detect, read (monolithicSparse, streamOptimized, monolithicFlat, twoGbMaxExtent*,
 * vmfs and any descriptor of FLAT/SPARSE/ZERO extents: reader.ts, extents.ts) and write
 * (writer.ts); this file is the handler that ties them together.
 * Structures and bounds: formats/containers/vmdk.ts and formats/containers/vmdk-descriptor.ts.
 */
import { DiskmintError } from '../../model/errors.js';
import type { ContainerHandler } from '../types.js';
import { vmdkEditing } from './edit.js';
import { OPTION_KEYS, parseWriteOptions, writeMonolithicFlat, writeMonolithicSparse, writeSplitSparse, writeStreamOptimized } from './writer.js';
import { detect, open } from './reader.js';

export const vmdkHandler: ContainerHandler = {
  format: 'vmdk',
  compresses: true,
  extensions: ['.vmdk'],
  optionKeys: OPTION_KEYS,
  editing: vmdkEditing,
  detect,
  open,
  async write(disk, sink, ctx) {
    const o = parseWriteOptions(ctx.options);
    if (o.subformat !== 'streamOptimized' && ctx.compress) {
      throw new DiskmintError('BAD_ARGUMENT', `vmdk: ${o.subformat} cannot hold compressed grains; use -o subformat=streamOptimized`);
    }
    if (ctx.compress?.algorithm !== undefined && ctx.compress.algorithm !== 'deflate') {
      throw new DiskmintError('BAD_ARGUMENT', `vmdk: streamOptimized grains are deflate (zlib) only, not ${ctx.compress.algorithm}`);
    }
    if (disk.size === 0) throw new DiskmintError('BAD_ARGUMENT', 'vmdk: cannot write an empty disk');
    if (o.subformat === 'monolithicSparse') await writeMonolithicSparse(disk, sink, ctx, o);
    else if (o.subformat === 'streamOptimized') await writeStreamOptimized(disk, sink, ctx, o);
    else if (o.subformat === 'twoGbMaxExtentSparse') await writeSplitSparse(disk, sink, ctx, o);
    else await writeMonolithicFlat(disk, sink, ctx, o);
  },
};
