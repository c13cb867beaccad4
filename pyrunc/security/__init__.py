"""Identity and confinement controls the init applies before execve (see docs/architecture.md)."""
