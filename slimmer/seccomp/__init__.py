"""Seccomp profiles from the trace: `data` (what runtimes need, the engine's default
profile, as data) and `profile` (the pure builder and the engine's JSON format)."""
