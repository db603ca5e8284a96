#!/usr/bin/env bash
# Install zdb (Debian's zfsutils-linux, in the contrib component) so the ZFS tests can judge
# our labels with `zdb -l`. Run as root; called from .ci/run.
#
# contrib is enabled by copying this machine's own apt source entries for the release (deb822
# stanzas under /etc/apt/sources.list.d/*.sources, or one-line entries in *.list files) with the
# component changed to contrib. No archive host name is written into the project: the URIs
# come from the machine.
#
# zfsutils-linux's maintainer scripts try to start services (zfs-zed, zfs-import, ...), which
# cannot run in a container without the kernel module; a policy-rc.d that denies every start
# is put in place for the install (and the machine's own one restored after), and if the
# package still ends half-configured, zdb is extracted from the downloaded .deb files into
# /usr/local/lib/diskmint-zdb with a wrapper in /usr/local/bin.
# zdb -l reads label files in userspace and needs no kernel module.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# zdb runs (binary and libraries load) when it answers a missing file with "cannot open".
zdb_works() {
  local out
  out=$(zdb -l /nonexistent/diskmint-probe 2>&1 || true)
  case "$out" in *"cannot open"*) return 0 ;; *) return 1 ;; esac
}

if command -v zdb >/dev/null 2>&1 && zdb_works; then
  echo "zfs-contrib: zdb already works ($(command -v zdb))"
  exit 0
fi

. /etc/os-release
codename=${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}
out822=/etc/apt/sources.list.d/diskmint-contrib.sources
outlist=/etc/apt/sources.list.d/diskmint-contrib.list

# deb822: every stanza whose Suites name this release (bookworm, bookworm-updates, ...) and
# that has no contrib yet, copied with `Components: contrib`.
copy_deb822() {
  awk -v rel="$codename" '
    function flush() {
      if (n > 0 && keep && !disabled && !hascontrib) { for (i = 1; i <= n; i++) print lines[i]; print "" }
      n = 0; keep = 0; disabled = 0; hascontrib = 0
    }
    /^[[:space:]]*$/ { flush(); next }
    /^#/ { next }
    {
      line = $0
      if (tolower($1) == "suites:") { for (i = 2; i <= NF; i++) if ($i == rel || index($i, rel "-") == 1) keep = 1 }
      if (tolower($1) == "enabled:" && tolower($2) == "no") disabled = 1
      if (tolower($1) == "components:") { for (i = 2; i <= NF; i++) if ($i == "contrib") hascontrib = 1; line = "Components: contrib" }
      lines[++n] = line
    }
    END { flush() }
  ' "$@"
}

# One-line format: `deb [opts] URI SUITE COMPONENT...` for this release, component -> contrib.
copy_list() {
  awk -v rel="$codename" '
    /^[[:space:]]*deb[[:space:]]/ {
      i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
      uri = i; suite = i + 1
      if (!($suite == rel || index($suite, rel "-") == 1)) next
      for (j = suite + 1; j <= NF; j++) if ($j == "contrib") next
      line = ""; for (j = 1; j <= suite; j++) line = line $j " "
      print line "contrib"
    }
  ' "$@"
}

shopt -s nullglob
sources=()
for f in /etc/apt/sources.list.d/*.sources; do [ "$f" != "$out822" ] && sources+=("$f"); done
lists=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do [ -f "$f" ] && [ "$f" != "$outlist" ] && lists+=("$f"); done

new822=""; newlist=""
[ ${#sources[@]} -gt 0 ] && new822=$(copy_deb822 "${sources[@]}")
[ ${#lists[@]} -gt 0 ] && newlist=$(copy_list "${lists[@]}")
if [ -n "$new822" ]; then printf '%s\n' "$new822" >"$out822"; echo "zfs-contrib: wrote $out822"; fi
if [ -n "$newlist" ]; then printf '%s\n' "$newlist" >"$outlist"; echo "zfs-contrib: wrote $outlist"; fi
if [ -z "$new822$newlist" ]; then echo "zfs-contrib: no $codename entry without contrib found; using apt sources as they are"; fi

apt-get update -qq

# Deny service starts during the install (containers have no init to start them with).
policy=/usr/sbin/policy-rc.d
saved=""
if [ -e "$policy" ]; then saved=$(mktemp); cp -p "$policy" "$saved"; fi
printf '#!/bin/sh\nexit 101\n' >"$policy"
chmod 755 "$policy"
restore_policy() { if [ -n "$saved" ]; then cp -p "$saved" "$policy"; rm -f "$saved"; else rm -f "$policy"; fi; }
trap restore_policy EXIT

# DISKMINT_ZFS_EXTRACT=1 skips the package install and takes the fallback (to test it).
if [ "${DISKMINT_ZFS_EXTRACT:-0}" != 1 ] && apt-get install -y -qq --no-install-recommends zfsutils-linux >/dev/null && zdb_works; then
  echo "zfs-contrib: installed zfsutils-linux $(dpkg-query -W -f '${Version}' zfsutils-linux)"
  exit 0
fi

# Fallback: unpack zdb and its libraries without running any maintainer script.
echo "zfs-contrib: zfsutils-linux did not install cleanly; extracting zdb from the packages" >&2
# Leave dpkg clean for later installs: drop a half-configured zfsutils-linux.
if ! dpkg --configure -a >/dev/null 2>&1; then
  dpkg --purge --force-all zfsutils-linux zfs-zed >/dev/null 2>&1 || true
fi
dest=/usr/local/lib/diskmint-zdb
tmp=$(mktemp -d)
chmod 755 "$tmp"
apt-get install -y -qq --no-install-recommends libtirpc3 zlib1g >/dev/null
(cd "$tmp" && apt-get -o APT::Sandbox::User=root download -qq zfsutils-linux libzpool5linux libnvpair3linux libuutil3linux libzfs4linux)
rm -rf "$dest" && mkdir -p "$dest"
for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$dest"; done
rm -rf "$tmp"
bin=""
for c in "$dest/sbin/zdb" "$dest/usr/sbin/zdb"; do [ -x "$c" ] && bin=$c && break; done
[ -n "$bin" ] || { echo "zfs-contrib: no zdb in the zfsutils-linux package" >&2; exit 1; }
cat >/usr/local/bin/zdb <<WRAP
#!/bin/sh
LD_LIBRARY_PATH="$dest/lib/x86_64-linux-gnu:$dest/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$bin" "\$@"
WRAP
chmod 755 /usr/local/bin/zdb
hash -r
zdb_works || { echo "zfs-contrib: extracted zdb does not run" >&2; exit 1; }
echo "zfs-contrib: zdb extracted to $dest (wrapper /usr/local/bin/zdb)"
