"""What the tools are made of (the top layer: models never import it)."""
from .convert import convert_effdet_checkpoint

__all__ = ['convert_effdet_checkpoint']
