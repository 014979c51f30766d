"""Checking hand-derived backprop formulas: a safe parser for the notation
people write (LaTeX or plain text), then a comparison with symnet's own
derivation."""
