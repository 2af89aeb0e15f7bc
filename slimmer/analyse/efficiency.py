"""Layer efficiency exactly as dive 0.13 computes it (filetree/efficiency.go).

dive users gate CI on `efficiencyScore` and `inefficientBytes`; to keep their
thresholds meaningful we reproduce dive's algorithm, quirks included, instead
of a cleaner definition (ours is `reclaimable_bytes`, computed by the tree):

- each layer is its own tree of member paths; only leaf nodes are scored;
- a path seen in several layers is "inefficient": its cumulative size is the
  sum of every layer's copy, and its minimum is the smallest copy;
- a whiteout scores 0 bytes, unless the path was a directory in the layers
  below stacked with dive's own stacking (where a directory that a layer only
  implies by its children is *not* a directory), then the bytes under it;
- opaque whiteouts (`.wh..wh.*`) are ignored entirely;
- a whiteout of a path missing below aborts the rest of that layer's walk and
  leaves its path scored with a minimum of -1 (dive's error path);
- score = sum(minimum) / sum(cumulative), 1.0 when nothing was seen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from slimmer.model import Layer

_WHITEOUT = ".wh."
_DOUBLE = ".wh..wh."


@dataclass(frozen=True)
class Efficiency:
    score: float
    wasted_bytes: int
    inefficient: tuple[tuple[str, int, int], ...]  # (path, copies, cumulative bytes)
    user_wasted_percent: float


class _Info:
    __slots__ = ("size", "is_dir")

    def __init__(self, size: int = 0, is_dir: bool = False) -> None:
        self.size = size
        self.is_dir = is_dir


class _Node:
    __slots__ = ("name", "info", "children", "parent")

    def __init__(self, name: str, info: _Info, parent: _Node | None) -> None:
        self.name = name
        self.info = info
        self.children: dict[str, _Node] = {}
        self.parent = parent

    def path(self) -> str:
        names = []
        node: _Node | None = self
        while node is not None and node.parent is not None:
            name = node.name
            if node is self and name.startswith(_WHITEOUT):
                name = name[len(_WHITEOUT) :]
            names.append(name)
            node = node.parent
        return ("/" + "/".join(reversed(names))).replace("//", "/")

    def is_whiteout(self) -> bool:
        return self.name.startswith(_WHITEOUT)


class _Tree:
    def __init__(self) -> None:
        self.root = _Node("", _Info(), None)

    def add(self, path: str, info: _Info) -> None:
        names = [n for n in path.strip("/").split("/") if n]
        node = self.root
        for i, name in enumerate(names):
            child = node.children.get(name)
            if child is None:
                if name.startswith(_DOUBLE):
                    return
                child = _Node(name, _Info(), node)
                node.children[name] = child
            node = child
            if i == len(names) - 1:
                node.info = info

    def get(self, path: str) -> _Node | None:
        node = self.root
        for name in path.strip("/").split("/"):
            if not name:
                continue
            found = node.children.get(name)
            if found is None:
                return None
            node = found
        return node

    def remove(self, path: str) -> None:
        node = self.get(path)
        if node is not None and node.parent is not None:
            node.parent.children.pop(node.name, None)

    def copy(self) -> _Tree:
        out = _Tree()
        out.root = _copy(self.root, None)
        return out

    def stack(self, upper: _Tree) -> None:
        for node in _walk(upper.root):
            if node.is_whiteout():
                self.remove(node.path())
            else:
                self.add(node.path(), node.info)


def _copy(node: _Node, parent: _Node | None) -> _Node:
    out = _Node(node.name, _Info(node.info.size, node.info.is_dir), parent)
    out.children = {name: _copy(child, out) for name, child in node.children.items()}
    return out


def _walk(node: _Node, leaves_only: bool = False) -> Iterator[_Node]:
    """dive's VisitDepthChildFirst: children (sorted) before parents, root never."""
    for name in sorted(node.children):
        yield from _walk(node.children[name], leaves_only)
    if node.parent is not None and (not leaves_only or not node.children):
        yield node


def _layer_tree(layer: Layer) -> _Tree:
    tree = _Tree()
    for member in layer.members:
        tree.add(member.name, _Info(member.size, member.is_dir))
    return tree


class _Data:
    __slots__ = ("cumulative", "minimum", "nodes")

    def __init__(self) -> None:
        self.cumulative = 0
        self.minimum = -1
        self.nodes = 0


def efficiency(layers: Sequence[Layer]) -> Efficiency:
    trees = [_layer_tree(layer) for layer in layers]
    data: dict[str, _Data] = {}
    inefficient: list[str] = []
    stacked = _StackCache(trees)
    for idx, tree in enumerate(trees):
        for node in _walk(tree.root, leaves_only=True):
            path = node.path()
            item = data.setdefault(path, _Data())
            size = _node_size(node, idx, stacked)
            if size is None:
                break  # dive aborts the rest of this layer's walk
            item.cumulative += size
            if item.minimum < 0 or size < item.minimum:
                item.minimum = size
            item.nodes += 1
            if item.nodes == 2:
                inefficient.append(path)
    minimum = sum(d.minimum for d in data.values())
    discovered = sum(d.cumulative for d in data.values())
    score = 1.0 if discovered == 0 else minimum / discovered
    wasted = sum(data[p].cumulative for p in inefficient)
    user = sum(layer.size for layer in layers[1:])
    rows = sorted(
        ((p, data[p].nodes, data[p].cumulative) for p in inefficient), key=lambda r: (-r[2], r[0])
    )
    return Efficiency(score, wasted, tuple(rows), (wasted / user) if user else 0.0)


def _node_size(node: _Node, idx: int, stacked: Callable[[int], _Tree]) -> int | None:
    if not node.is_whiteout():
        return node.info.size
    previous = stacked(idx - 1).get(node.path())
    if previous is None:
        return None
    if not previous.info.is_dir:
        return 0
    return sum(n.info.size for n in _walk(previous))


class _StackCache:
    """dive's StackTreeRange(trees, 0, stop), computed once per `stop`."""

    def __init__(self, trees: list[_Tree]) -> None:
        self._trees = trees
        self._cache: dict[int, _Tree] = {}

    def __call__(self, stop: int) -> _Tree:
        if stop not in self._cache:
            tree = self._trees[0].copy() if stop < 0 else self(stop - 1).copy()
            if stop >= 0:
                tree.stack(self._trees[stop])
            self._cache[stop] = tree
        return self._cache[stop]
