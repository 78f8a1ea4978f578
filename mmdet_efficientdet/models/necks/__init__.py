from .bifpn import BiFPNNeck
from .topologies import TOPOLOGIES, bifpn_topology, fpn_topology, pan_topology

__all__ = ['BiFPNNeck', 'TOPOLOGIES', 'bifpn_topology', 'fpn_topology', 'pan_topology']
