#!/bin/sh
# Build a minimal busybox root filesystem in DIR from the static busybox binary.
# Usage: scripts/build-rootfs.sh DIR   (idempotent: DIR is rebuilt from scratch)
set -eu

dest=${1:?usage: build-rootfs.sh DIR}
busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || { echo "build-rootfs: $busybox not found (apt-get install busybox-static)" >&2; exit 1; }

tmp="$dest.tmp.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
cd "$tmp"

mkdir -p bin sbin usr/bin usr/sbin etc proc sys dev root home/user run var/tmp mnt
install -d -m 1777 tmp
install -m 0755 "$busybox" bin/busybox
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "bin/$applet"
done

cat > etc/passwd <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > etc/group <<'GROUP'
root:x:0:
tty:x:5:
users:x:100:user
user:x:1000:
nogroup:x:65534:
GROUP
echo busybox > etc/hostname
: > etc/resolv.conf
: > etc/hosts
chown 1000:1000 home/user

cd - >/dev/null
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
