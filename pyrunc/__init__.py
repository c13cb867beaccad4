"""pyrunc: an OCI runtime-spec compliant container runtime, a drop-in peer of runc."""

__version__ = "0.1.0"
#: The runtime-spec version pyrunc implements and writes into `state` and `spec` output.
SPEC_VERSION = "1.2.0"
