"""slimmer: make container images small and keep them working."""

from __future__ import annotations

__version__ = "0.1.0"
