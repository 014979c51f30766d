"""The errors a user can cause. Each message names the layer, key, parameter or
text position at fault; the CLI prints it on one line and exits 2."""


class SymnetError(Exception):
    """Base of every error a user of symnet can cause."""


class SpecError(SymnetError):
    """A network spec is malformed: unknown key, layer, activation or loss."""


class ShapeError(SymnetError):
    """Shapes do not fit: a layer's input, a parameter or a data array."""


class FormulaError(SymnetError):
    """A formula string could not be parsed; the message gives the position."""


class NotDifferentiableError(SymnetError):
    """An activation or loss whose gradient is useless for training."""


class DataError(SymnetError):
    """A data set path or its contents are unusable."""


class TrainingError(SymnetError):
    """Training went wrong in a way the user can fix (NaN loss, bad option)."""


class RenderError(SymnetError):
    """A document could not be produced (for example no TeX engine for PDF)."""


class OutputError(SymnetError):
    """An output file or folder cannot be written (read-only, a file in the way, a folder named as a file)."""
