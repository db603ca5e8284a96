#!/usr/bin/env bash
# Assembles bootcode/uefi-hello.asm into a PE32+ UEFI application (default:
# bootcode/diskmint-hello.efi). Usage: bootcode/build-uefi-hello.sh [OUTPUT]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/diskmint-hello.efi}"
nasm -f bin -o "$out" "$here/uefi-hello.asm"
size=$(stat -c %s "$out")
[ "$size" -eq 1024 ] || { echo "unexpected size $size (expected 1024)" >&2; exit 1; }
