"""Renderers: analysis values in, text/JSON/Markdown out. Nothing here computes."""
