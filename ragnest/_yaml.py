"""``yaml.safe_load`` with a bound on alias expansion ("billion laughs" refused at once).

A YAML alias (``*a``) repeats the node anchored as ``&a``. PyYAML builds one shared
object per anchor, so loading a 2.6 KB file whose nine levels each repeat the level
below nine times is quick, but any code that walks the result as a tree (interpolating
``${VAR}``, merging profiles, validating) visits 9^9 nodes: minutes and gigabytes before
anything is rejected. :func:`safe_load` composes the node graph first (anchors shared,
nothing expanded), counts the nodes the document would have with every alias expanded
(each anchored subtree counted once, so the count itself is cheap), and refuses a
document over ``max_nodes`` or with an alias inside its own anchor (a cycle) with a
:class:`~ragnest.errors.ConfigError` before a single Python object is built::

    >>> from ragnest._yaml import safe_load
    >>> safe_load("a: &x [1, 2]\\nb: *x\\n")
    {'a': [1, 2], 'b': [1, 2]}
    >>> bomb = "a: &a [x, x, x, x]\\n" + "".join(
    ...     f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}]\\n" for p, c in zip("abcdefgh", "bcdefghi"))
    >>> safe_load(bomb, where="bomb.yaml")
    Traceback (most recent call last):
    ...
    ragnest.errors.ConfigError: bomb.yaml: the YAML expands to more than 100,000 nodes through its aliases (*name): refused (an alias bomb?); a pipeline file needs a few hundred
"""

from __future__ import annotations

from typing import Any

import yaml

from ragnest.errors import ConfigError

__all__ = ["MAX_NODES", "safe_load"]

#: Nodes a document may expand to (pipeline files have a few hundred).
MAX_NODES = 100_000


def _expanded_size(root: yaml.Node, limit: int, where: str) -> int:
    """Nodes of ``root`` with every alias expanded; raises past ``limit`` or on a cycle."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in on_path:
            raise ConfigError(f"{where}: an alias refers to the node that contains it "
                              "(a recursive YAML structure): refused")
        on_path.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            for child in node.value:
                total += size(child)
                if total > limit:
                    break
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += size(k) + size(v)
                if total > limit:
                    break
        on_path.discard(key)
        if total > limit:
            raise ConfigError(
                f"{where}: the YAML expands to more than {limit:,} nodes through its aliases "
                "(*name): refused (an alias bomb?); a pipeline file needs a few hundred")
        sizes[key] = total
        return total

    return size(root)


def safe_load(text: str, *, where: str = "YAML", max_nodes: int = MAX_NODES) -> Any:
    """``yaml.safe_load(text)`` after checking the expanded size (see the module docs).

    YAML syntax errors propagate as ``yaml.YAMLError``.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, max_nodes, where)
        return loader.construct_document(node)
    finally:
        loader.dispose()
