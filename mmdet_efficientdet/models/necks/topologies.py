"""Feature-network topologies as data.

A topology is a list of nodes ``dict(level=l, inputs=[i, ...])``. Levels count from 0 (the
finest output level). Input ids 0 … L-1 are the L input levels (after the extra levels are
made); id L + k is node k. Each level's output is its last node (or its input when no node
targets it). Adding a topology means adding a function that returns such a list (or writing
the list in a config), not a class.
"""
from typing import Callable, Dict, List


def bifpn_topology(num_levels: int) -> List[dict]:
    """BiFPN (paper Fig. 2f): top-down, then bottom-up with a skip from the input."""
    last = {level: level for level in range(num_levels)}
    every = {level: [level] for level in range(num_levels)}
    nodes = []

    def add(level, inputs):
        nodes.append(dict(level=level, inputs=inputs))
        node_id = num_levels + len(nodes) - 1
        last[level] = node_id
        every[level].append(node_id)

    for level in range(num_levels - 2, -1, -1):
        add(level, [last[level], last[level + 1]])
    for level in range(1, num_levels):
        add(level, every[level] + [last[level - 1]])
    return nodes


def pan_topology(num_levels: int) -> List[dict]:
    """FPN top-down followed by PANet's bottom-up path (paper Fig. 2b)."""
    last = {level: level for level in range(num_levels)}
    nodes = []

    def add(level, inputs):
        nodes.append(dict(level=level, inputs=inputs))
        last[level] = num_levels + len(nodes) - 1

    for level in range(num_levels - 1, -1, -1):
        add(level, [last[level]] + ([last[level + 1]] if level < num_levels - 1 else []))
    for level in range(num_levels):
        add(level, [last[level]] + ([last[level - 1]] if level > 0 else []))
    return nodes


def fpn_topology(num_levels: int) -> List[dict]:
    """Top-down FPN only (paper Fig. 2a); repeated like any cell."""
    last = {level: level for level in range(num_levels)}
    nodes = []
    for level in range(num_levels - 1, -1, -1):
        inputs = [last[level]] + ([last[level + 1]] if level < num_levels - 1 else [])
        nodes.append(dict(level=level, inputs=inputs))
        last[level] = num_levels + len(nodes) - 1
    return nodes


TOPOLOGIES: Dict[str, Callable[[int], List[dict]]] = {
    'bifpn': bifpn_topology,
    'pan': pan_topology,
    'fpn': fpn_topology,
}


def validate_topology(nodes: List[dict], num_levels: int) -> List[dict]:
    """Check a node list; return it as plain dicts with int fields."""
    checked = []
    for index, node in enumerate(nodes):
        if set(node) != {'level', 'inputs'}:
            raise ValueError(f'topology node {index} {node!r}: expected keys level, inputs')
        level, inputs = int(node['level']), [int(i) for i in node['inputs']]
        if not 0 <= level < num_levels:
            raise ValueError(f'topology node {index}: level {level} is not in '
                             f'[0, {num_levels - 1}]')
        available = num_levels + index
        if not inputs or any(not 0 <= i < available for i in inputs):
            raise ValueError(f'topology node {index}: inputs {inputs} must be non-empty ids in '
                             f'[0, {available - 1}] (levels 0…{num_levels - 1}, then earlier '
                             'nodes)')
        checked.append(dict(level=level, inputs=inputs))
    return checked
