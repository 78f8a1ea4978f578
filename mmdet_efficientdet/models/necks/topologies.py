"""Feature-network topologies as data.

A topology is a list of nodes ``dict(level=l, inputs=[i, ...])``. Levels count from 0 (the
finest output level). Input ids 0 … L-1 are the L input levels (after the extra levels are
made); id L + k is node k. Each level's output is its last node (or its input when no node
targets it). Adding a topology means adding a function that returns such a list (or writing
the list in a config), not a class.

The BiFPN's nodes and their order follow google/automl ``efficientdet/keras/fpn_configs.py``
(``bifpn_config``) and effdet ``effdet/config/fpn_config.py`` (``bifpn_config``); PANet's
effdet's ``panfpn_config``; FPN is its top-down half (both Apache-2.0).
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


def validate_topology(nodes, num_levels: int) -> List[dict]:
    """Check a node list fully (each error names the node and the valid values); return it
    as plain dicts with int fields."""
    if not isinstance(nodes, (list, tuple)) or not nodes:
        raise ValueError(f'topology {nodes!r}: expected a non-empty list of nodes '
                         "dict(level=l, inputs=[ids]), or one of 'bifpn', 'pan', 'fpn'")
    checked = []
    for index, node in enumerate(nodes):
        where = f'topology node {index} {node!r}'
        if not isinstance(node, dict) or set(node) != {'level', 'inputs'}:
            raise ValueError(f'{where}: expected dict(level=l, inputs=[ids])')
        level, inputs = node['level'], node['inputs']
        if not _is_int(level) or not 0 <= level < num_levels:
            raise ValueError(f'{where}: level must be an int in [0, {num_levels - 1}] (0 is the '
                             f'finest output level), got {level!r}')
        available = num_levels + index
        if (not isinstance(inputs, (list, tuple)) or not inputs
                or not all(_is_int(i) and 0 <= i < available for i in inputs)):
            raise ValueError(f'{where}: inputs must be a non-empty list of ids in '
                             f'[0, {available - 1}] (levels 0…{num_levels - 1}, then earlier '
                             f'nodes), got {inputs!r}')
        checked.append(dict(level=int(level), inputs=[int(i) for i in inputs]))
    missing = sorted(set(range(num_levels)) - {node['level'] for node in checked})
    if missing:
        raise ValueError(f'topology: no node computes level(s) {missing}; every output level '
                         f'0…{num_levels - 1} needs one (its last node is its output)')
    return checked


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
