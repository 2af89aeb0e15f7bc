"""Findings: what an image handbook warns about, found in the config and file tree."""
