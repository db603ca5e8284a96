import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * Peer tools judge our bytes. Under CI=true a missing tool is a failure naming the Debian
 * package; on a developer machine the test is skipped with the same message.
 */
export function havePeer(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

export function peerMissingMessage(tool: string, pkg: string): string {
  return `${tool} not found: install the Debian package "${pkg}" (apt-get install ${pkg})`;
}

/**
 * Returns true when the tool is present. When it is missing: throws under CI, else warns
 * and returns false so the caller can `ctx.skip()`.
 */
export function requirePeer(tool: string, pkg: string): boolean {
  if (havePeer(tool)) return true;
  const msg = peerMissingMessage(tool, pkg);
  if (process.env.CI === 'true' || process.env.CI === '1') throw new Error(msg);
  console.warn(`skipping: ${msg}`);
  return false;
}

/** Like requirePeer, for a file or folder a Debian package provides (OVMF firmware, GRUB modules). */
export function requireFile(path: string, pkg: string): boolean {
  if (existsSync(path)) return true;
  const msg = `${path} not found: install the Debian package "${pkg}" (apt-get install ${pkg})`;
  if (process.env.CI === 'true' || process.env.CI === '1') throw new Error(msg);
  console.warn(`skipping: ${msg}`);
  return false;
}

/** Run a peer tool and return stdout+stderr text, whatever its exit code. */
export function runPeer(tool: string, args: string[], input?: string): { status: number; out: string } {
  const r = spawnSync(tool, args, { encoding: 'utf8', input, env: { ...process.env, LC_ALL: 'C' } });
  return { status: r.status ?? -1, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

export function runPeerOk(tool: string, args: string[], input?: string): string {
  return execFileSync(tool, args, { encoding: 'utf8', input, env: { ...process.env, LC_ALL: 'C' } });
}
