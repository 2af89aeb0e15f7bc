from __future__ import annotations

from slimmer.cli import main

main()
