"""Checks of the generated modules' Python API: the kernels do not bound-check, so
every array is checked (shape, dtype, layout) before it reaches them."""
import numpy as np

try:
    from symnet.errors import ShapeError
except ImportError:  # a --standalone file runs without symnet installed
    class ShapeError(ValueError):
        """Shapes do not fit: a parameter or a data array."""


def c_strides(shape, dtype):
    """The strides of a C-contiguous array of shape and dtype (computed, not allocated)."""
    strides, step = [], np.dtype(dtype).itemsize
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return tuple(reversed(strides))


def param_checks(names, shapes, dtype):
    """(name, shape, strides) of each array, as param_arrays wants them."""
    return tuple((name, shapes[name], c_strides(shapes[name], dtype)) for name in names)


def param_arrays(params, checks, n_params, dtype, exact=False, exact_state=False):
    """The arrays of params in the order of checks (parameters, then n_params.. batch-norm
    state), converted where allowed. exact: parameters updated in place must already fit;
    exact_state: likewise the state."""
    dt = np.dtype(dtype)
    names = [name for name, _, _ in checks]
    try:
        arrays = [params[name] for name in names]
    except (KeyError, TypeError):
        missing = [name for name in names if not isinstance(params, dict) or name not in params]
        hint = " (batch-norm state: add net.init_state() to params)" if names.index(missing[0]) >= n_params else ""
        raise ShapeError(f"params: missing parameter {missing[0]!r} (expected {', '.join(names)}){hint}") from None
    for k, (name, shape, strides) in enumerate(checks):
        value = arrays[k]
        if type(value) is np.ndarray and value.dtype is dt and value.strides == strides and value.shape == shape:
            continue
        if exact if k < n_params else exact_state:
            raise ShapeError(f"params: {name} must be a C-contiguous {dt.name} array of shape {shape} for an "
                             f"in-place update, got {getattr(value, 'dtype', type(value).__name__)} "
                             f"{getattr(value, 'shape', '')}")
        value = np.ascontiguousarray(value, dtype=dt)
        if value.shape != shape:
            raise ShapeError(f"params: {name} must have shape {shape}, got {value.shape}")
        arrays[k] = value
    return arrays


def batch(X, name, shape, dtype):
    """X as a C-contiguous dtype array of shape (batch, *shape), batch > 0."""
    if type(X) is not np.ndarray or X.dtype is not np.dtype(dtype) or not X.flags.c_contiguous:
        X = np.ascontiguousarray(X, dtype=dtype)
    if X.shape[1:] != shape or X.shape[0] == 0:
        want = ", ".join(str(s) for s in shape)
        raise ShapeError(f"{name}: expected a non-empty array of shape (batch, {want}), got {X.shape}")
    return X


def batches(X, Y, in_shape, n_out, dtype):
    """(X, Y) checked, with as many rows each."""
    X = batch(X, "X", in_shape, dtype)
    Y = batch(Y, "Y", (n_out,), dtype)
    if Y.shape[0] != X.shape[0]:
        raise ShapeError(f"Y: {Y.shape[0]} rows for {X.shape[0]} rows of X")
    return X, Y


def draw_dropout_masks(rng, rows, dropout, dtype):
    """Inverted-dropout masks for `rows` examples from the numpy Generator rng, one per
    (rate, shape) of dropout: keep with probability 1 - rate; `scale(rate)` of the
    derivation multiplies the kept entries (dropout: (rate, shape, scale) triples)."""
    masks = []
    for rate, shape, scale in dropout:
        keep = rng.random((rows,) + shape) >= rate
        masks.append(keep.astype(dtype) * dtype(scale))
    return masks


def masks_in_order(masks, rows, dropout, dtype):
    """Dropout masks in kernel order (ones, i.e. dropout off, when masks is None)."""
    if masks is None:
        return [np.ones((rows,) + shape, dtype) for _, shape, _ in dropout]
    if len(masks) != len(dropout):
        raise ShapeError(f"masks: {len(dropout)} dropout mask(s) expected, got {len(masks)}")
    out = []
    for k, ((_, shape, _), mask) in enumerate(zip(dropout, masks)):
        out.append(batch(mask, f"masks[{k}]", shape, dtype))
        if out[-1].shape[0] != rows:
            raise ShapeError(f"masks[{k}]: {out[-1].shape[0]} rows for {rows} rows of X")
    return out


def check_batch_stats(X, has_state):
    if has_state and X.shape[0] < 2:
        raise ShapeError(f"X: batch norm needs at least 2 examples per training batch, got {X.shape[0]}")
