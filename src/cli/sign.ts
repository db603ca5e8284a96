/** The `diskmint key`, `sign` and `bundle` command groups: Ed25519 keys, signed images, update bundles. */
import type { Command } from 'commander';
import { DiskmintError } from '../model/errors.js';
import { formatBytes } from '../model/size.js';
import { signImage, writeDetached } from '../ops/sign.js';
import { writeKeyPair } from '../ops/sign-keys.js';
import { createBundle } from '../ops/bundle/create.js';
import { openBundle, type OpenedBundle } from '../ops/bundle/open.js';
import { printOut } from './output.js';
import { printJson } from './json.js';
import * as opts from './options.js';
import { checkLevel, type Values } from './options.js';

function formatBundle(b: OpenedBundle, pubkey?: string): string {
  const m = b.manifest;
  const lines = [
    `${b.path}: diskmint update bundle, ${m.kind}, ${formatBytes(b.fileSize)}`,
    `  version:      ${m.version ? JSON.stringify(m.version) : '(none)'}`,
    `  created:      ${new Date(m.created * 1000).toISOString()} (${m.created})`,
    `  image:        ${formatBytes(m.payloadSize)} (${m.payloadSize} bytes), sha256 ${m.payloadSha256}`,
  ];
  if (m.kind === 'delta')
    lines.push(`  base:         ${formatBytes(m.baseSize ?? 0)} (${m.baseSize} bytes), sha256 ${m.baseSha256}: applies only to a slot holding this`);
  lines.push(
    `  target slot:  at least ${formatBytes(m.targetSlotSize)} (${m.targetSlotSize} bytes)`,
    `  payload:      ${m.records} record${m.records === 1 ? '' : 's'}, ${m.compression}, ${formatBytes(m.blockSize)} blocks, ${formatBytes(m.storedSize)} stored, sha256 matches the manifest`,
    `  signature:    ${b.verified ? `verified with ${pubkey}` : b.signed ? 'Ed25519, not checked (give --pubkey KEY.pub)' : 'none (unsigned)'}`,
  );
  return lines.join('\n');
}

const KEY_GENERATE_OPTIONS = [
  opts.described(opts.output, 'writes KEY.pem (private, PKCS#8, mode 0600) and KEY.pub (public, SPKI)'),
  opts.hidden(opts.text('--out <key>', 'the old spelling of --output')),
] as const;
const SIGN_OPTIONS = [
  opts.required(opts.privateKey),
  opts.described(opts.output, 'signature file (default IMAGE.sig)'),
  opts.text('--detach-dir <dir>', 'also write manifest.json and manifest.sig there, for openssl pkeyutl -verify'),
  opts.json,
] as const;
const BUNDLE_CREATE_OPTIONS = [
  opts.required(opts.described(opts.from, 'the new OS image')),
  opts.text('--base <file>', 'the image the slot holds now: store only the blocks that differ (a delta)'),
  opts.described(opts.privateKey, 'Ed25519 private key (PEM) to sign the manifest'),
  opts.flag('--unsigned', 'make an unsigned bundle (devices given --pubkey refuse it)'),
  opts.text('--version <v>', 'release name recorded in the manifest'),
  opts.withDefault(opts.described(opts.compression, 'zstd (RFC 8878) or deflate (zlib, RFC 1950)'), 'zstd'),
  opts.described(opts.level, 'compression level (default: zstd 9, deflate 9)'),
  opts.described(opts.threads, 'compression threads (default: every core); the bundle bytes do not depend on it'),
  opts.integer('--block-size <bytes>', 'delta block size, a power of two from 4096 to 1048576 (default 65536)', 1, 2 ** 30),
  opts.required(opts.described(opts.output, 'the bundle (.dmb)')),
  opts.json,
] as const;
const BUNDLE_INSPECT_OPTIONS = [
  opts.described(opts.pubkey, 'check the signature with this Ed25519 public key (PEM)'),
  opts.described(opts.requireSignature, 'refuse an unsigned bundle'),
  opts.text('--extract <dir>', 'write manifest.json and manifest.sig (raw signature) there, for openssl pkeyutl -verify'),
  opts.json,
] as const;

export function addSignCommands(program: Command): void {
  // `bundle create --version V` must reach the subcommand, not the root's -V/--version:
  // root options are then recognised only before the subcommand name.
  program.enablePositionalOptions();
  const key = program.command('key').description('Ed25519 signing keys (PEM)');
  opts
    .addOptions(key.command('generate').description('make a new Ed25519 key pair; never overwrites an existing private key'), KEY_GENERATE_OPTIONS)
    .action(async (o: Values<typeof KEY_GENERATE_OPTIONS>) => {
      if (o.output !== undefined && o.out !== undefined) throw new DiskmintError('BAD_ARGUMENT', '--out is the old spelling of -o/--output: give one of them');
      const name = o.output ?? o.out;
      if (name === undefined) throw new DiskmintError('BAD_ARGUMENT', 'give -o/--output KEY: writes KEY.pem and KEY.pub');
      const r = await writeKeyPair(name);
      printOut(`private key ${r.privatePath} (keep it secret), public key ${r.publicPath}\n`);
    });

  opts
    .addOptions(
      program
        .command('sign')
        .argument('<image>')
        .description("sign an image's manifest: size, sha256, and each partition's type, label, offset, size and sha256"),
      SIGN_OPTIONS,
    )
    .action(async (image: string, o: Values<typeof SIGN_OPTIONS>) => {
      const r = await signImage(image, o.key, { output: o.output, detachDir: o.detachDir });
      if (o.json) return printJson(r);
      printOut(
        `${r.signaturePath}: signed ${formatBytes(r.manifest.image.size)} image, sha256 ${r.manifest.image.sha256.slice(0, 12)}, ${r.manifest.partitions.length} partitions\n`,
      );
      if (r.detached) printOut(`detached: ${r.detached.manifestPath} ${r.detached.signaturePath}\n`);
    });

  const bundle = program.command('bundle').description('signed update bundles (.dmb) for A/B slots: full or delta');
  opts
    .addOptions(
      bundle.command('create').description('make an update bundle; creation time from SOURCE_DATE_EPOCH (else 0), so it is reproducible'),
      BUNDLE_CREATE_OPTIONS,
    )
    .action(async (o: Values<typeof BUNDLE_CREATE_OPTIONS>) => {
      if (!o.key && !o.unsigned) throw new DiskmintError('BAD_ARGUMENT', 'give --key KEY.pem to sign the bundle (or --unsigned)');
      if (o.key && o.unsigned) throw new DiskmintError('BAD_ARGUMENT', '--key and --unsigned contradict each other');
      const r = await createBundle({
        from: o.from,
        base: o.base,
        key: o.key,
        version: o.version,
        compression: o.compression === 'deflate' ? 'zlib' : 'zstd',
        level: checkLevel(o.level, o.compression),
        threads: o.threads,
        blockSize: o.blockSize,
        output: o.output,
      });
      if (o.json) return printJson(r);
      const m = r.manifest;
      printOut(
        `${r.path}: ${m.kind} bundle, ${formatBytes(r.bytes)} for a ${formatBytes(m.payloadSize)} image (${m.records} record${m.records === 1 ? '' : 's'}), ${r.signed ? 'signed' : 'UNSIGNED'}\n`,
      );
    });

  opts
    .addOptions(bundle.command('inspect').argument('<bundle>').description('show the manifest and whether the bundle verifies'), BUNDLE_INSPECT_OPTIONS)
    .action(async (path: string, o: Values<typeof BUNDLE_INSPECT_OPTIONS>) => {
      const b = await openBundle(path, { pubkey: o.pubkey, requireSignature: o.requireSignature });
      if (o.extract) {
        if (!b.signed) throw new DiskmintError('BAD_ARGUMENT', `${path} is unsigned: there is no signature to extract`);
        await writeDetached(o.extract, { manifestBytes: b.manifestBytes, signature: b.signature });
      }
      if (o.json) printJson({ path: b.path, fileSize: b.fileSize, signed: b.signed, verified: b.verified, manifest: b.manifest });
      else printOut(`${formatBundle(b, o.pubkey)}\n`);
    });
}
