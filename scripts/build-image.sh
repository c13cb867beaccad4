#!/bin/sh
# Build the local container images the client tests import (no registry involved), in DIR:
#   busybox.docker.tar  docker-archive of localhost/pyrunc-test/busybox:latest (busybox-static + applet links)
#   busybox.oci.tar     the same image as an oci-archive
#   pause.docker.tar    docker-archive of localhost/pyrunc-test/pause:latest, the CRI pod sandbox image:
#                       a static catatonit in pause mode (`/pause -P`), which exits on SIGTERM/SIGINT as PID 1
# Usage: scripts/build-image.sh DIR   (needs umoci, skopeo, busybox-static, catatonit; DIR is rebuilt)
set -eu

dest=${1:?usage: build-image.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
catatonit=${CATATONIT:-/usr/bin/catatonit}
for tool in umoci skopeo; do
    command -v "$tool" >/dev/null || { echo "build-image: $tool not found (apt-get install $tool)" >&2; exit 1; }
done
[ -x "$catatonit" ] || { echo "build-image: $catatonit not found (apt-get install catatonit)" >&2; exit 1; }

# skopeo keeps a blob-info cache in /var/lib/containers/cache: remove it unless it was there before.
cache=/var/lib/containers
[ -e "$cache" ] && cache=

tmp="$dest.tmp.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp" ${cache:+"$cache"}' EXIT
mkdir -p "$tmp"
layout="$tmp/layout"
umoci init --layout "$layout"

# image NAME POPULATE-COMMAND CONFIG-ARGS...: a one-layer image whose rootfs the command fills.
image() {
    name=$1 populate=$2
    shift 2
    umoci new --image "$layout:$name"
    umoci unpack --image "$layout:$name" "$tmp/$name"
    $populate "$tmp/$name/rootfs"
    umoci repack --image "$layout:$name" "$tmp/$name"
    umoci config --image "$layout:$name" --author pyrunc-tests --os linux --architecture amd64 "$@"
    skopeo copy --quiet "oci:$layout:$name" "docker-archive:$tmp/$name.docker.tar:localhost/pyrunc-test/$name:latest"
}

busybox_rootfs() {
    "$here/build-rootfs.sh" "$1"
}

pause_rootfs() {
    install -m 0755 "$catatonit" "$1/pause"
}

image busybox busybox_rootfs \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.workingdir / --config.cmd sh
skopeo copy --quiet "oci:$layout:busybox" "oci-archive:$tmp/busybox.oci.tar:localhost/pyrunc-test/busybox:latest"
image pause pause_rootfs --config.entrypoint /pause --config.cmd -P

rm -rf "$dest"
mkdir -p "$dest"
mv "$tmp"/*.tar "$dest/"
