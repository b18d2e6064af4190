"""River's HalfSpaceTrees, pickled as columns of node values rather than node by node.

Every checkpoint saves each source's monitor, and pickling 10 trees of height 8 one node object at a time
(5,110 nodes, each a dict of attributes) took about 11 ms per source: with 50 services, over half a second
of the worker's event loop per checkpoint. The trees are complete binary trees, so their shape follows from
``height``; what a snapshot needs is each node's split and masses in depth-first order. Importing this module
registers that form with :mod:`copyreg`; snapshots pickled node by node (before it) still load as they are.
"""

from __future__ import annotations

import copyreg
from typing import Any, Callable, Iterator

from river.anomaly import HalfSpaceTrees
from river.tree.padded import PaddedBranch, PaddedLeaf

__all__ = ["HalfSpaceTrees"]


def _columns(hst: HalfSpaceTrees) -> tuple[Callable[[dict[str, Any]], HalfSpaceTrees], tuple[dict[str, Any]]]:
    state = hst.__dict__.copy()
    trees = state.pop("trees")
    state.pop("_tree_nodes")  # the same nodes, tree by tree in depth-first order: rebuilt from the trees
    nodes = [node for tree in hst._tree_nodes for node in tree]
    branches = [node for node in nodes if isinstance(node, PaddedBranch)]
    state["_columns"] = (len(trees), [b.feature for b in branches], [b.threshold for b in branches],
                         [node.l_mass for node in nodes], [node.r_mass for node in nodes])
    return _from_columns, (state,)


def _from_columns(state: dict[str, Any]) -> HalfSpaceTrees:
    count, features, thresholds, l_masses, r_masses = state.pop("_columns")
    hst = HalfSpaceTrees.__new__(HalfSpaceTrees)
    hst.__dict__.update(state)
    splits: Iterator[tuple[Any, float]] = zip(features, thresholds)
    masses = zip(l_masses, r_masses)

    def grow(height: int) -> PaddedBranch | PaddedLeaf:  # depth-first, as River's make_padded_tree builds
        l_mass, r_mass = next(masses)
        if height == 0:
            return PaddedLeaf(r_mass=r_mass, l_mass=l_mass)
        feature, threshold = next(splits)
        left = grow(height - 1)
        return PaddedBranch(left, grow(height - 1), feature, threshold, l_mass, r_mass)

    hst.trees = [grow(hst.height) for _ in range(count)]
    hst._tree_nodes = [list(tree.iter_dfs()) for tree in hst.trees]
    return hst


copyreg.pickle(HalfSpaceTrees, _columns)
