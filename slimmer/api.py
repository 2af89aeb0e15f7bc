"""slimmer's library entry points: one function per command, values out.

The CLI calls these; so can any Python program.
"""

from __future__ import annotations

from slimmer.engine import Engine, Leftover, saver
from slimmer.filetree import WantContent
from slimmer.inspect import Inspection, analyze, want_for_inspect
from slimmer.reader import Image, open_image, parse_ref


def read_image(ref: str, want: WantContent) -> Image:
    """Read an image; connects to the engine only for engine references."""
    parsed = parse_ref(ref)
    if parsed.transport != "engine":
        return open_image(parsed, want=want)
    engine = Engine.connect()
    try:
        return open_image(parsed, save=saver(engine), want=want)
    finally:
        engine.close()


def inspect_image(ref: str) -> Inspection:
    with read_image(ref, want_for_inspect) as image:
        return analyze(image)


def cleanup(dry_run: bool = False) -> list[Leftover]:
    engine = Engine.connect()
    try:
        items = engine.leftovers()
        if not dry_run:
            for item in items:
                engine.remove_leftover(item)
        return items
    finally:
        engine.close()
