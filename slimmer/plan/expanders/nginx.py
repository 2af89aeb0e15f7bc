"""Expanders of nginx: the document roots, aliases and files its configuration
(with its includes) names, read statically from the image."""

from __future__ import annotations

import posixpath
from functools import partial

from slimmer.image.paths import SYSTEM_DIRS, compile_glob, exists, expand, is_dir, read_text
from slimmer.model import TreeView
from slimmer.plan.expanders._common import not_kept
from slimmer.plan.expanders.nginx_conf import referenced_paths
from slimmer.plan.keep import Addition, ProfileContext, Reason, Result, argv_words, subtree

NGINX_PREFIXES = ("/usr/share/nginx", "/etc/nginx")


def nginx_main_configs(ctx: ProfileContext) -> list[str]:
    """The `-c FILE` of the config's command line, else /etc/nginx/nginx.conf."""
    words = argv_words(ctx)
    named = [words[i + 1] for i, w in enumerate(words[:-1]) if w == "-c"]
    named = [posixpath.join(NGINX_PREFIXES[0], n) if not n.startswith("/") else n for n in named]
    return sorted(set(named)) or ["/etc/nginx/nginx.conf"]


def _nginx_glob(tree: TreeView, pattern: str) -> list[str]:
    try:
        return list(expand(tree, compile_glob(pattern)))
    except ValueError:
        return []


def nginx_roots(ctx: ProfileContext, profile_name: str) -> Result:
    """Every `root`/`alias` tree of the nginx configuration (with its includes)
    whole, and the files it names (certificates, keys, htpasswd, modules)."""
    tree = ctx.tree
    prefixes = tuple(p for p in NGINX_PREFIXES if is_dir(tree, p))
    out: list[Addition] = []
    for main in nginx_main_configs(ctx):
        found = referenced_paths(
            main, partial(read_text, tree), partial(_nginx_glob, tree), prefixes
        )
        for item in found:
            reason = Reason(
                "profile",
                f"{item.directive} {item.path} in {item.source}: nginx "
                f"serves or reads it on requests no probe made",
                profile_name,
            )
            if item.tree and item.path not in SYSTEM_DIRS and is_dir(tree, item.path):
                out += subtree(tree, item.path, reason, closure=False)
            elif not item.tree and exists(tree, item.path):
                out.append(Addition(item.path, reason))
    return not_kept(out, ctx.kept), []
