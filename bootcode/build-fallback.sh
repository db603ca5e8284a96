#!/bin/sh
# Builds diskmint's fallback boot-stage selector and its test stages with nasm (Debian package
# "nasm"); see bootcode/README.md and bootcode/SELECTOR.md.
#
#   bootcode/build-fallback.sh           # writes the .bin files next to this script
#   bootcode/build-fallback.sh OUTDIR    # or into OUTDIR
#
# Outputs: fallback-mbr.bin (exactly 440 bytes), fallback-stage2.bin (at most 16 sectors,
# K in fallback-mbr.asm), test-stage-a.bin and test-stage-b.bin (exactly 1024 bytes each).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
mkdir -p "$out"

build() { # SOURCE OUTPUT
  nasm -f bin -I "$here/" -o "$out/$2" "$here/$1"
}
size_is() { # FILE OP BYTES
  n=$(wc -c <"$out/$1")
  if ! [ "$n" "$2" "$3" ]; then
    echo "build-fallback.sh: $1 is $n bytes, expected $2 $3" >&2
    exit 1
  fi
}

build fallback-mbr.asm fallback-mbr.bin
size_is fallback-mbr.bin -eq 440
build fallback-stage2.asm fallback-stage2.bin
size_is fallback-stage2.bin -le 8192
build test-stage-a.asm test-stage-a.bin
size_is test-stage-a.bin -eq 1024
build test-stage-b.asm test-stage-b.bin
size_is test-stage-b.bin -eq 1024
