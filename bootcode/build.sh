#!/bin/sh
# Assemble diskmint's MBR boot code into a raw 440-byte image.
#   bootcode/build.sh [OUTPUT]     (default OUTPUT: bootcode/diskmint-mbr.bin)
# Needs GNU binutils (as, ld, objcopy); Debian package "binutils".
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src="$here/diskmint-mbr.S"
out=${1:-"$here/diskmint-mbr.bin"}
limit=440

tmp=$(mktemp -d "${TMPDIR:-/tmp}/diskmint-mbr.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

# -R: no .note.gnu.property or similar sections; only .text reaches the binary.
as --32 -o "$tmp/mbr.o" "$src"
ld -m elf_i386 -Ttext 0x7c00 -e _start --build-id=none -o "$tmp/mbr.elf" "$tmp/mbr.o"
objcopy -O binary -j .text "$tmp/mbr.elf" "$tmp/mbr.raw"

size=$(wc -c < "$tmp/mbr.raw")
if [ "$size" -gt "$limit" ]; then
  echo "build.sh: boot code is $size bytes, over the $limit-byte limit" >&2
  exit 1
fi
# Pad with zeros to exactly 440 bytes.
head -c "$limit" "$tmp/mbr.raw" > "$tmp/mbr.bin"
dd if=/dev/zero bs=1 count=$((limit - size)) status=none >> "$tmp/mbr.bin"
mv "$tmp/mbr.bin" "$out"
