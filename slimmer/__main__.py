from __future__ import annotations

from slimmer.cli.main import main

main()
