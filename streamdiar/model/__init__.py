"""The Weighter network, its loss and checkpoint files."""
from streamdiar.model.checkpoint import DEFAULT_WEIGHTS, load_weighter, save_weighter
from streamdiar.model.weighter import Weighter, WeighterOutput

__all__ = ["DEFAULT_WEIGHTS", "Weighter", "WeighterOutput", "load_weighter", "save_weighter"]
