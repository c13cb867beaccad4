"""Versions of the libraries pyrunc links at run time, for `--version` and `features`."""

from __future__ import annotations

import ctypes


class _ScmpVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


def libseccomp_version() -> str:
    """libseccomp's version from the shared library itself, without importing the Python bindings."""
    try:
        lib = ctypes.CDLL("libseccomp.so.2")
    except OSError:
        return "not available"
    lib.seccomp_version.restype = ctypes.POINTER(_ScmpVersion)
    v = lib.seccomp_version().contents
    return f"{v.major}.{v.minor}.{v.micro}"
