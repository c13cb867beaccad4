"""The local images (no registry): built by scripts/build-image.sh into build/images/ and cached there."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "scripts" / "build-image.sh"
INPUTS = (SCRIPT, REPO / "scripts" / "build-rootfs.sh")
IMAGES_DIR = REPO / "build" / "images"

BUSYBOX = "localhost/pyrunc-test/busybox:latest"
PAUSE = "localhost/pyrunc-test/pause:latest"


@dataclass(frozen=True)
class Images:
    busybox_docker: Path  # docker-archive (docker load, podman load, ctr images import)
    busybox_oci: Path  # the same image as an oci-archive (podman load, ctr images import)
    pause_docker: Path  # the CRI sandbox image


def ensure_images() -> Images:
    """Build the archives when one is missing or older than the scripts that make them."""
    images = Images(IMAGES_DIR / "busybox.docker.tar", IMAGES_DIR / "busybox.oci.tar", IMAGES_DIR / "pause.docker.tar")
    archives = [images.busybox_docker, images.busybox_oci, images.pause_docker]
    newest_input = max(p.stat().st_mtime for p in INPUTS)
    if any(not a.exists() or a.stat().st_mtime < newest_input for a in archives):
        subprocess.run([str(SCRIPT), str(IMAGES_DIR)], check=True)
    return images
