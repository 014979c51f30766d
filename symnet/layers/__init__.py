"""Layer types. Each module registers its class in LAYER_TYPES for spec files."""
from .base import LAYER_TYPES, Layer, Placed, register
from .dense import Dense
from .softmax import Softmax

__all__ = ["LAYER_TYPES", "Layer", "Placed", "register", "Dense", "Softmax"]
