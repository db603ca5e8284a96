#!/bin/sh
# Assemble the serial-marker volume boot record (512 bytes, ends with 0x55AA).
#   bootcode/build-serial-marker.sh [OUTPUT]   (default OUTPUT: bootcode/serial-marker.bin)
# Needs nasm (Debian package "nasm").
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src="$here/serial-marker.asm"
out=${1:-"$here/serial-marker.bin"}

nasm -f bin -o "$out" "$src"

size=$(wc -c < "$out")
if [ "$size" -ne 512 ]; then
  echo "build-serial-marker.sh: $out is $size bytes, expected 512" >&2
  exit 1
fi
