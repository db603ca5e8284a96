/**
 * Boot a disk image in QEMU (TCG only, no KVM) and wait for a marker on the first serial port.
 *
 * The serial port goes to QEMU's standard output (`-serial stdio`, `-monitor none`,
 * `-nographic`), which is read as it arrives; QEMU's standard error is kept for diagnostics.
 * QEMU is always killed (SIGKILL) before this returns, whether the marker appeared, the
 * timeout passed or something threw, and its exit is awaited: no QEMU outlives a call.
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const QEMU_X86_64 = 'qemu-system-x86_64';
export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

export interface BootOptions {
  /** Disk image path. */
  disk: string;
  /** QEMU block driver for the image: `raw`, `qcow2` or `vmdk`. */
  format: 'raw' | 'qcow2' | 'vmdk';
  /** `bios`: QEMU's default SeaBIOS; `uefi`: OVMF (code read-only, a temporary copy of the vars). */
  firmware: 'bios' | 'uefi';
  /** Text whose appearance on the serial port ends the boot with `found: true`. */
  marker: string;
  /** Give up (and kill QEMU) after this long. Default 30 s for BIOS, 120 s for UEFI. */
  timeoutMs?: number;
  /** How the disk is attached. Default `virtio` (SeaBIOS and OVMF both drive virtio-blk). */
  bus?: 'virtio' | 'ide';
  /** Guest memory in MiB (default 256). */
  memoryMiB?: number;
  /**
   * `nographic` (default): SeaBIOS's serial console (sercon) mirrors the screen on COM1 too.
   * `none`: no screen at all, so COM1 carries only what the guest writes to the UART itself
   * (sercon's output would otherwise land in the middle of the guest's lines).
   */
  display?: 'nographic' | 'none';
}

export interface BootResult {
  /** The marker appeared on the serial port before the timeout. */
  found: boolean;
  /** Everything the guest wrote to the serial port. */
  log: string;
  /** Milliseconds from spawning QEMU to the marker (or to the timeout / QEMU's exit). */
  ms: number;
  /** Why the wait ended. */
  reason: 'marker' | 'timeout' | 'exited';
  /** QEMU's exit code when it ended by itself (reason 'exited'). */
  exitCode?: number | null;
  /** What QEMU itself printed on standard error (bad options, missing files ...). */
  stderr: string;
}

/** The QEMU command line for a boot, without the executable (exported for error messages). */
export function qemuArgs(opts: BootOptions, varsCopy?: string): string[] {
  const args = [
    '-accel',
    'tcg',
    '-m',
    String(opts.memoryMiB ?? 256),
    ...(opts.display === 'none' ? ['-display', 'none'] : ['-nographic']),
    '-no-reboot',
    '-serial',
    'stdio',
    '-monitor',
    'none',
    '-nodefaults', // no default VGA, CD-ROM, floppy, parallel port
    '-nic',
    'none', // no network card: no PXE attempts before (or instead of) the disk
  ];
  if (opts.firmware === 'uefi') {
    if (!varsCopy) throw new Error('UEFI boot needs a copy of the OVMF variable store');
    args.push('-drive', `if=pflash,format=raw,readonly=on,file=${OVMF_CODE}`, '-drive', `if=pflash,format=raw,file=${varsCopy}`);
  }
  args.push('-drive', `file=${opts.disk},format=${opts.format},if=${opts.bus ?? 'virtio'},media=disk`);
  return args;
}

export async function bootAndWaitForMarker(opts: BootOptions): Promise<BootResult> {
  const timeoutMs = opts.timeoutMs ?? (opts.firmware === 'uefi' ? 120_000 : 30_000);
  if (!existsSync(opts.disk)) throw new Error(`bootAndWaitForMarker: no disk image at ${opts.disk}`);

  let workDir: string | undefined;
  let varsCopy: string | undefined;
  if (opts.firmware === 'uefi') {
    for (const f of [OVMF_CODE, OVMF_VARS]) {
      if (!existsSync(f)) throw new Error(`bootAndWaitForMarker: ${f} not found (Debian package "ovmf")`);
    }
    workDir = await mkdtemp(join(tmpdir(), 'diskmint-qemu-'));
    varsCopy = join(workDir, 'OVMF_VARS_4M.fd');
    await copyFile(OVMF_VARS, varsCopy); // OVMF writes its variables: never the shared file
  }

  const started = Date.now();
  const child = spawn(QEMU_X86_64, qemuArgs(opts, varsCopy), { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  let stderr = '';
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((res) => {
    child.once('exit', (code) => {
      exitCode = code;
      res();
    });
    // A spawn failure (ENOENT ...) emits 'error' and maybe no 'exit'.
    child.once('error', (err) => {
      stderr += `\n[spawn error] ${err.message}`;
      exitCode ??= null;
      res();
    });
  });

  let reason: BootResult['reason'];
  let ms: number;
  try {
    reason = await new Promise<BootResult['reason']>((resolveWait) => {
      const timer = setTimeout(() => resolveWait('timeout'), timeoutMs);
      const done = (r: BootResult['reason']) => {
        clearTimeout(timer);
        resolveWait(r);
      };
      child.stdout.setEncoding('latin1');
      child.stdout.on('data', (chunk: string) => {
        log += chunk;
        if (log.includes(opts.marker)) done('marker');
      });
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (chunk: string) => (stderr += chunk));
      void exited.then(() => done(log.includes(opts.marker) ? 'marker' : 'exited'));
    });
    ms = Date.now() - started;
  } finally {
    // Always: kill and reap, even when the marker came (QEMU would halt forever otherwise).
    if (exitCode === undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    if (workDir) await rm(workDir, { recursive: true, force: true });
  }
  return { found: reason === 'marker', log, ms, reason, exitCode: reason === 'exited' ? exitCode : undefined, stderr };
}

/** A readable failure message: the command, why it ended, the serial log's tail, QEMU's stderr. */
export function describeBoot(opts: BootOptions, r: BootResult): string {
  const tail = r.log.length > 4000 ? `...${r.log.slice(-4000)}` : r.log;
  return [
    `marker ${JSON.stringify(opts.marker)} not seen (${r.reason} after ${r.ms} ms${r.exitCode !== undefined ? `, exit ${r.exitCode}` : ''})`,
    `command: ${QEMU_X86_64} ${qemuArgs(opts, '<OVMF_VARS copy>').join(' ')}`,
    `serial log (tail):\n${tail}`,
    r.stderr ? `qemu stderr:\n${r.stderr}` : '',
  ].join('\n');
}

/** Run `tasks` with at most `limit` running at once (a 2-core CI machine: 2 QEMUs). */
export async function runLimited<T>(limit: number, tasks: Array<() => Promise<T>>): Promise<T[]> {
  const results = new Array<T>(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}

export interface BiosCaptureOptions {
  /** QEMU block driver for the image (default raw). */
  format?: BootOptions['format'];
  /**
   * Text after which the boot is over (for a guest that halts rather than exits). Without it
   * the guest must end QEMU itself (bootcode/test-stage-*.bin triple-fault under -no-reboot).
   */
  until?: string;
  /** Default 60 s (TCG on a busy 2-core machine). */
  timeoutMs?: number;
  /** How the disk is attached (default virtio-blk; `ide`: SeaBIOS's ATA driver). */
  bus?: BootOptions['bus'];
}

/**
 * Boots `disk` under SeaBIOS (TCG) and returns everything the guest wrote to COM1, once QEMU
 * exits by itself or `until` appears. Throws (with the log) when neither happens in time.
 */
export async function bootBiosAndCapture(disk: string, opts: BiosCaptureOptions = {}): Promise<string> {
  const boot: BootOptions = {
    disk,
    format: opts.format ?? 'raw',
    firmware: 'bios',
    // Without `until`, a text no guest prints: the boot then ends only when QEMU exits.
    marker: opts.until ?? '\u0000diskmint: no marker\u0000',
    timeoutMs: opts.timeoutMs ?? 60_000,
    bus: opts.bus,
    display: 'none', // COM1 holds the guest's own lines only (no SeaBIOS sercon)
  };
  const r = await bootAndWaitForMarker(boot);
  if (r.reason === 'timeout') throw new Error(describeBoot(boot, r));
  return r.log;
}
