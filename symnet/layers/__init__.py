"""Layer types. Each module registers its class in LAYER_TYPES for spec files."""
from .base import LAYER_TYPES, Layer, Placed, register
from .dense import Dense
from .softmax import Softmax
from .conv import Conv2D
from .pool import AvgPool2D, MaxPool2D
from .flatten import Flatten
from .batchnorm import BatchNorm
from .dropout import Dropout

__all__ = ["LAYER_TYPES", "Layer", "Placed", "register", "Dense", "Softmax", "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten", "Dropout", "BatchNorm"]
