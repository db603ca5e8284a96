/** The `diskmint key`, `sign` and `bundle` command groups: Ed25519 keys, signed images, update bundles. */
import { Command, Option } from 'commander';
import { DiskmintError } from '../model/errors.js';
import { formatBytes } from '../model/size.js';
import { signImage, writeDetached, writeKeyPair } from '../ops/sign.js';
import { createBundle } from '../ops/bundle/create.js';
import { openBundle, type OpenedBundle } from '../ops/bundle/open.js';
import { printOut } from './output.js';

const json = (v: unknown) => printOut(`${JSON.stringify(v, null, 2)}\n`);

function formatBundle(b: OpenedBundle, pubkey?: string): string {
  const m = b.manifest;
  const lines = [
    `${b.path}: diskmint update bundle, ${m.kind}, ${formatBytes(b.fileSize)}`,
    `  version:      ${m.version ? JSON.stringify(m.version) : '(none)'}`,
    `  created:      ${new Date(m.created * 1000).toISOString()} (${m.created})`,
    `  image:        ${formatBytes(m.payloadSize)} (${m.payloadSize} bytes), sha256 ${m.payloadSha256}`,
  ];
  if (m.kind === 'delta') lines.push(`  base:         ${formatBytes(m.baseSize ?? 0)} (${m.baseSize} bytes), sha256 ${m.baseSha256}: applies only to a slot holding this`);
  lines.push(
    `  target slot:  at least ${formatBytes(m.targetSlotSize)} (${m.targetSlotSize} bytes)`,
    `  payload:      ${m.records} record${m.records === 1 ? '' : 's'}, ${m.compression}, ${formatBytes(m.blockSize)} blocks, ${formatBytes(m.storedSize)} stored, sha256 matches the manifest`,
    `  signature:    ${b.verified ? `verified with ${pubkey}` : b.signed ? 'Ed25519, not checked (give --pubkey KEY.pub)' : 'none (unsigned)'}`,
  );
  return lines.join('\n');
}

export function addSignCommands(program: Command): void {
  // `bundle create --version V` must reach the subcommand, not the root's -V/--version:
  // root options are then recognised only before the subcommand name.
  program.enablePositionalOptions();
  const key = program.command('key').description('Ed25519 signing keys (PEM)');
  key.command('generate').requiredOption('--out <key>', 'writes KEY.pem (private, PKCS#8, mode 0600) and KEY.pub (public, SPKI)')
    .description('make a new Ed25519 key pair; never overwrites an existing private key')
    .action(async (o: { out: string }) => {
      const r = await writeKeyPair(o.out);
      printOut(`private key ${r.privatePath} (keep it secret), public key ${r.publicPath}\n`);
    });

  program.command('sign').argument('<image>').requiredOption('--key <file>', 'Ed25519 private key (PEM)')
    .option('-o, --output <file>', 'signature file (default IMAGE.sig)')
    .option('--detach-dir <dir>', 'also write manifest.json and manifest.sig there, for openssl pkeyutl -verify')
    .option('--json')
    .description("sign an image's manifest: size, sha256, and each partition's type, label, offset, size and sha256")
    .action(async (image: string, o: { key: string; output?: string; detachDir?: string; json?: boolean }) => {
      const r = await signImage(image, o.key, { output: o.output, detachDir: o.detachDir });
      if (o.json) {
        json(r);
        return;
      }
      printOut(`${r.signaturePath}: signed ${formatBytes(r.manifest.image.size)} image, sha256 ${r.manifest.image.sha256.slice(0, 12)}, ${r.manifest.partitions.length} partitions\n`);
      if (r.detached) printOut(`detached: ${r.detached.manifestPath} ${r.detached.signaturePath}\n`);
    });

  const bundle = program.command('bundle').description('signed update bundles (.dmb) for A/B slots: full or delta');
  bundle.command('create').requiredOption('--from <file>', 'the new OS image')
    .option('--base <file>', 'the image the slot holds now: store only the blocks that differ (a delta)')
    .option('--key <file>', 'Ed25519 private key (PEM) to sign the manifest')
    .option('--unsigned', 'make an unsigned bundle (devices given --pubkey refuse it)')
    .option('--version <v>', 'release name recorded in the manifest')
    .addOption(new Option('--compression <kind>', 'zstd (RFC 8878) or deflate (zlib, RFC 1950)').choices(['zstd', 'deflate']).default('zstd'))
    .option('--level <n>', 'compression level (default: zstd 9, deflate 9)', (v) => Number(v))
    .option('--threads <n>', 'compression threads (default: every core); the bundle bytes do not depend on it', (v) => Number(v))
    .option('--block-size <bytes>', 'delta block size, a power of two from 4096 to 1048576 (default 65536)', (v) => Number(v))
    .requiredOption('-o, --output <file>', 'the bundle (.dmb)')
    .option('--json')
    .description('make an update bundle; creation time from SOURCE_DATE_EPOCH (else 0), so it is reproducible')
    .action(async (o: { from: string; base?: string; key?: string; unsigned?: boolean; version?: string; compression: 'zstd' | 'deflate'; level?: number; threads?: number; blockSize?: number; output: string; json?: boolean }) => {
      if (!o.key && !o.unsigned) throw new DiskmintError('BAD_ARGUMENT', 'give --key KEY.pem to sign the bundle (or --unsigned)');
      if (o.key && o.unsigned) throw new DiskmintError('BAD_ARGUMENT', '--key and --unsigned contradict each other');
      const r = await createBundle({
        from: o.from, base: o.base, key: o.key, version: o.version, compression: o.compression === 'deflate' ? 'zlib' : 'zstd',
        level: o.level, threads: o.threads, blockSize: o.blockSize, output: o.output,
      });
      if (o.json) {
        json(r);
        return;
      }
      const m = r.manifest;
      printOut(`${r.path}: ${m.kind} bundle, ${formatBytes(r.bytes)} for a ${formatBytes(m.payloadSize)} image (${m.records} record${m.records === 1 ? '' : 's'}), ${r.signed ? 'signed' : 'UNSIGNED'}\n`);
    });

  bundle.command('inspect').argument('<bundle>')
    .option('--pubkey <file>', 'check the signature with this Ed25519 public key (PEM)')
    .option('--require-signature', 'refuse an unsigned bundle')
    .option('--extract <dir>', 'write manifest.json and manifest.sig (raw signature) there, for openssl pkeyutl -verify')
    .option('--json')
    .description('show the manifest and whether the bundle verifies')
    .action(async (path: string, o: { pubkey?: string; requireSignature?: boolean; extract?: string; json?: boolean }) => {
      const b = await openBundle(path, { pubkey: o.pubkey, requireSignature: o.requireSignature });
      if (o.extract) {
        if (!b.signed) throw new DiskmintError('BAD_ARGUMENT', `${path} is unsigned: there is no signature to extract`);
        await writeDetached(o.extract, { manifestBytes: b.manifestBytes, signature: b.signature });
      }
      if (o.json) json({ path: b.path, fileSize: b.fileSize, signed: b.signed, verified: b.verified, manifest: b.manifest });
      else printOut(`${formatBundle(b, o.pubkey)}\n`);
    });
}
