#!/bin/sh
# Build the pieces of the cgroup v2 test VM into DIR (default build/vm): an uncompressed kernel (vmlinux),
# its modules (with a busybox-made modules.dep) and a busybox initramfs (initrd.img) whose /init is
# scripts/cgroup2-vm/init.  Idempotent: the kernel package is fetched and unpacked once per version, the
# initramfs is rebuilt only when init, this script or the kernel changed.  Installs the Debian packages it
# needs when they are missing.  See docs/cgroup2-vm.md.
# Usage: scripts/cgroup2-vm/build.sh [DIR]
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../build/vm}
mkdir -p "$out"
out=$(cd "$out" && pwd)
# Modules the initramfs loads to reach the 9p shares, the overlay and the output ports (deps follow).
initrd_modules="virtio_mmio 9pnet_virtio 9p overlay virtio_console virtio-rng"

log() { echo "cgroup2-vm build: $*" >&2; }
die() { log "$*"; exit 1; }

install_missing() {
    missing=
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$' || missing="$missing $pkg"
    done
    [ -z "$missing" ] && return
    log "installing:$missing"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >&2 ||
        { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >&2; }
}

# The versioned image package behind the linux-image-amd64 metapackage (the generic kernel: the cloud one
# lacks 9p).
kernel_package() {
    apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n 1
}

# Download and unpack PKG into $out/kernel (replacing an older one) and index its modules.
fetch_kernel() {
    pkg=$1
    tmp="$out/kernel.tmp"
    rm -rf "$tmp"
    mkdir -p "$tmp/deb"
    chown _apt "$tmp/deb" 2>/dev/null || true  # else apt warns that it downloads unsandboxed
    log "downloading $pkg"
    (cd "$tmp/deb" && apt-get download -q "$pkg" >&2)
    dpkg-deb -x "$tmp"/deb/*.deb "$tmp/root"
    rm -rf "$tmp/deb"
    kver=$(ls "$tmp/root/lib/modules")
    log "indexing modules of $kver"
    busybox depmod -b "$tmp/root" "$kver"
    echo "$pkg" > "$tmp/root/package"
    rm -rf "$out/kernel" "$out/vmlinux"
    mv "$tmp/root" "$out/kernel"
    rm -rf "$tmp"
}

# Extract the ELF vmlinux from the compressed payload of a bzImage (its offset and length are in the
# x86 boot header); TCG boots it about twice as fast as the self-decompressing vmlinuz.
extract_vmlinux() {
    bz=$1 dest=$2
    setup_sects=$(od -An -tu1 -j $((0x1f1)) -N 1 "$bz" | tr -d ' ')
    payload_offset=$(od -An -tu4 -j $((0x248)) -N 4 "$bz" | tr -d ' ')
    payload_length=$(od -An -tu4 -j $((0x24c)) -N 4 "$bz" | tr -d ' ')
    start=$(( (setup_sects + 1) * 512 + payload_offset ))
    magic=$(tail -c +$((start + 1)) "$bz" | head -c 4 | od -An -tx1 | tr -d ' \n')
    case $magic in
        fd377a58) decompress="xz -dc --single-stream" ;;
        1f8b*) decompress="gzip -dc" ;;
        28b52ffd) decompress="zstd -dcq" ;;
        *) die "unknown kernel payload compression (magic $magic) in $bz" ;;
    esac
    # gzip complains about the 4-byte size trailer the kernel appends: only the ELF check below counts.
    tail -c +$((start + 1)) "$bz" | head -c "$payload_length" | $decompress > "$dest.tmp" 2>/dev/null || true
    [ "$(head -c 4 "$dest.tmp" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] ||
        { rm -f "$dest.tmp"; die "could not extract an ELF vmlinux from $bz"; }
    mv "$dest.tmp" "$dest"
}

build_initrd() {
    kver=$1
    moddir="$out/kernel/lib/modules/$kver"
    tmp="$out/initramfs.tmp"
    rm -rf "$tmp"
    mkdir -p "$tmp/bin" "$tmp/proc" "$tmp/sys" "$tmp/dev" "$tmp/lib/modules/$kver"
    install -m 0755 /bin/busybox "$tmp/bin/busybox"
    for applet in $(/bin/busybox --list); do
        [ "$applet" = busybox ] || ln -s busybox "$tmp/bin/$applet"
    done
    install -m 0755 "$here/init" "$tmp/init"
    # The modules and everything they depend on, as listed by modules.dep.
    for mod in $initrd_modules; do
        file=$(sed -n "s|^\([^:]*/$mod\.ko\):.*|\1|p" "$moddir/modules.dep")
        [ -n "$file" ] || die "module $mod not found in $moddir"
        for f in $file $(sed -n "s|^$file: *||p" "$moddir/modules.dep"); do
            mkdir -p "$tmp/lib/modules/$kver/$(dirname "$f")"
            cp "$moddir/$f" "$tmp/lib/modules/$kver/$f"
        done
    done
    busybox depmod -b "$tmp" "$kver"
    (cd "$tmp" && find . | busybox cpio -o -H newc 2>/dev/null) > "$out/initrd.img.tmp"
    mv "$out/initrd.img.tmp" "$out/initrd.img"
    rm -rf "$tmp"
}

install_missing qemu-system-x86 busybox-static xz-utils

pkg=$(kernel_package)
[ -n "$pkg" ] || { apt-get update -q >&2 || true; pkg=$(kernel_package); }
# Without apt metadata keep the kernel already unpacked.
[ -n "$pkg" ] || pkg=$(cat "$out/kernel/package" 2>/dev/null) || die "cannot find the package linux-image-amd64 depends on"
[ "$(cat "$out/kernel/package" 2>/dev/null)" = "$pkg" ] || fetch_kernel "$pkg"
kver=$(ls "$out/kernel/lib/modules")

[ -s "$out/vmlinux" ] || { log "extracting vmlinux"; extract_vmlinux "$out/kernel/boot/vmlinuz-$kver" "$out/vmlinux"; }

stale=0
for input in "$here/init" "$here/build.sh" "$out/kernel/package"; do
    [ "$out/initrd.img" -nt "$input" ] || stale=1
done
[ "$stale" = 0 ] || { log "building initrd.img"; build_initrd "$kver"; }
