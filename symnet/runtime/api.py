"""The Python API of every generated kernel module: dicts of named arrays in, arrays
positional to the module's entry kernels, batches cut into shares run in threads.

A generated module builds one NetworkAPI from its entry kernels (_evaluate,
_loss_and_grads, _train_step) and its constants, and exports the bound methods
(forward, loss, ..., train_step). Everything here is the same for every network; what
varies is in the constants. The calls are on the hot path of a small network's training
step (a 2-16-16-1 step is ~15 us), so each does its checks once and allocates nothing
it can keep: empty optimiser state for plain SGD, the zero penalty, an empty dX.
"""
import threading

import numpy as np

from .checks import batch, batches, check_batch_stats, draw_dropout_masks, masks_in_order, param_arrays, param_checks
from .optim import fused_arguments, fused_update, plain_sgd
from .threads import MIN_SHARE_FLOPS, Pool, checked_threads, default_threads, shares
from .workspace import workspace


class NetworkAPI:
    """forward, loss, forward_and_loss, loss_and_grads, loss_and_input_grad, train_step,
    dropout_masks, set_num_threads, get_num_threads of one generated network.

    evaluate, loss_and_grads, train_step: the module's entry kernels. dtype, in_shape,
    n_out: of the data; param_shapes, state_shapes: name -> shape (parameters in kernel
    order, then batch norm's running statistics); penalised: per parameter, whether L2/L1
    apply (weights); dropout: (rate, shape, scale) per dropout layer; flops_per_row
    (evaluation, training) size the thread shares, split (evaluation, training) allows them;
    work_per_row (evaluation, training, int64 index) sizes the workspaces."""

    def __init__(self, evaluate, loss_and_grads, train_step, *, dtype, in_shape, n_out, param_shapes,
                 state_shapes, penalised, dropout, flops_per_row, split, work_per_row):
        self._evaluate, self._loss_and_grads, self._train_step = evaluate, loss_and_grads, train_step
        self.dtype = np.dtype(dtype).type
        self.in_shape, self.n_out = tuple(in_shape), int(n_out)
        self.param_names, self.state_names = tuple(param_shapes), tuple(state_shapes)
        self.param_shapes = dict(param_shapes)
        self.penalised, self.dropout = tuple(penalised), tuple(dropout)
        self.eval_flops, self.train_flops = flops_per_row
        self.split_eval, self.split_train = split
        self.eval_work, self.train_work, self.index_work = work_per_row
        shapes = {**param_shapes, **state_shapes}
        self.checks = param_checks(self.param_names + self.state_names, shapes, self.dtype)   # no allocation
        self.min_share_flops = MIN_SHARE_FLOPS
        self.threads = default_threads()
        self.pool = Pool()
        self.local = threading.local()
        n = len(self.param_names)
        # kept between calls, never written: the kernels read them only
        self._no_dx = np.empty((0,) * (len(self.in_shape) + 1), self.dtype)
        self._no_state = [np.empty(0, self.dtype)] * (2 * n)
        self._no_penalty = np.zeros(2)

    # -- threads and workspaces
    def set_num_threads(self, n):
        """Use at most n threads per call (default: the CPUs this process may run on,
        or the environment variable SYMNET_NUM_THREADS)."""
        self.threads = checked_threads(n)

    def get_num_threads(self):
        return self.threads

    def shares(self, rows, flops_per_row, split):
        """Row ranges of a batch, one per thread (symnet.runtime.threads.shares)."""
        return shares(rows, flops_per_row, split, self.threads, self.min_share_flops)

    def workspace(self, rows, per_row):
        """(work, iwork) for a kernel call on `rows` examples in this thread."""
        return workspace(self.local, rows, per_row, self.index_work, self.dtype)

    # -- checks
    def _params(self, params, exact=False, exact_state=False):
        return param_arrays(params, self.checks, len(self.param_names), self.dtype, exact, exact_state)

    def _batches(self, X, Y):
        return batches(X, Y, self.in_shape, self.n_out, self.dtype)

    def _masks(self, masks, rows):
        if masks is None and not self.dropout:
            return ()
        return masks_in_order(masks, rows, self.dropout, self.dtype)

    def dropout_masks(self, rng, rows):
        """Inverted-dropout masks for a batch of `rows` examples, drawn from the numpy
        Generator `rng`: keep with probability 1 - rate, kept entries scaled by 1/(1 - rate)."""
        return draw_dropout_masks(rng, rows, self.dropout, self.dtype)

    # -- evaluation
    def _evaluation(self, params, X, Y):
        """(outputs, batch loss or 0 when Y is None), shares of the batch in threads."""
        X = batch(X, "X", self.in_shape, self.dtype)
        if Y is None:
            Y = np.empty((0, self.n_out), self.dtype)
        else:
            X, Y = self._batches(X, Y)
        arrays = self._params(params)
        rows, with_loss = X.shape[0], Y.shape[0] > 0

        def share(a, b):
            return self._evaluate(X[a:b], Y[a:b] if with_loss else Y, rows, with_loss,
                                  *self.workspace(b - a, self.eval_work), *arrays)

        parts = self.pool.run(share, self.shares(rows, self.eval_flops, self.split_eval))
        outputs = parts[0][0] if len(parts) == 1 else np.concatenate([out for out, _ in parts])
        return outputs, float(sum(value for _, value in parts))

    def forward(self, params, X):
        """The network's outputs, shape (batch, n_out); evaluation mode."""
        return self._evaluation(params, X, None)[0]

    def loss(self, params, X, Y):
        """The batch loss (mean over the batch); evaluation mode (dropout off; batch norm
        normalises with its running statistics)."""
        return self._evaluation(params, X, Y)[1]

    def forward_and_loss(self, params, X, Y):
        """(outputs, batch loss) in one evaluation pass: forward() and loss() together."""
        return self._evaluation(params, X, Y)

    # -- gradients
    def _grads(self, X, Y, DX, batch_stats, update, arrays, masks, row_shares):
        """(loss, gradient arrays in parameter order) of the batch, its shares run in threads
        (batch_stats: batch norm normalises with the batch's statistics, else the running ones)."""
        rows = X.shape[0]

        def share(a, b):
            grads = [np.empty(self.param_shapes[name], self.dtype) for name in self.param_names]
            value = self._loss_and_grads(X[a:b], Y[a:b], DX[a:b] if DX.size else DX, batch_stats, update, rows,
                                         *self.workspace(b - a, self.train_work), *arrays, *grads,
                                         *[mask[a:b] for mask in masks])
            return value, grads

        parts = self.pool.run(share, row_shares)
        value, grads = parts[0]
        for more, more_grads in parts[1:]:
            value += more
            for g, h in zip(grads, more_grads):
                g += h
        return float(value), grads

    def _training_batches(self, X, Y):
        X, Y = self._batches(X, Y)
        check_batch_stats(X, bool(self.state_names))
        return X, Y

    def loss_and_grads(self, params, X, Y, masks=None, update_state=True):
        """(batch loss, dict of gradients with the keys and shapes of PARAM_SHAPES), in
        training mode (batch norm: batch statistics; update_state moves the running
        statistics in params in place)."""
        X, Y = self._training_batches(X, Y)
        arrays = self._params(params, exact_state=update_state)
        row_shares = self.shares(X.shape[0], self.train_flops, self.split_train)
        value, grads = self._grads(X, Y, self._no_dx, True, update_state, arrays, self._masks(masks, X.shape[0]),
                                   row_shares)
        return value, dict(zip(self.param_names, grads))

    def loss_and_input_grad(self, params, X, Y, masks=None, training=False):
        """(batch loss, dL/dX with the shape of X): the input gradient, for adversarial examples.
        As in evaluation (the loss is loss()'s; batch norm uses its running statistics), with
        dropout masks if given; training=True: batch norm uses the batch's statistics (its
        running ones do not move)."""
        X, Y = self._training_batches(X, Y) if training else self._batches(X, Y)
        DX = np.empty(X.shape, self.dtype)
        row_shares = self.shares(X.shape[0], self.train_flops, self.split_train if training else self.split_eval)
        value, _ = self._grads(X, Y, DX, bool(training), False, self._params(params), self._masks(masks, X.shape[0]),
                               row_shares)
        return value, DX

    # -- training
    def train_step(self, params, X, Y, lr, masks=None, optimizer=None, penalty=(0.0, 0.0)):
        """One optimiser step in place on params' arrays at rate lr: plain SGD, or the update of
        `optimizer` (a symnet.optim.Optimizer; its step count and state buffers advance) fused
        into the backward pass; penalty (c2, c1) adds c2 W + c1 sign(W) to each weight's
        gradient (L2/L1). Returns the batch loss before the step."""
        X, Y = self._training_batches(X, Y)
        rows = X.shape[0]
        arrays = self._params(params, exact=True, exact_state=True)
        masks = self._masks(masks, rows)
        if optimizer is None:
            (kind, h), state = plain_sgd(lr), self._no_state
        else:
            kind, h, state = fused_arguments(optimizer, lr, arrays[:len(self.param_names)], self.param_names)
        c2, c1 = penalty
        reg = self._no_penalty if c2 == 0 and c1 == 0 else np.array((c2, c1), np.float64)
        row_shares = self.shares(rows, self.train_flops, self.split_train)
        if len(row_shares) == 1:   # one fused kernel: each layer's update right after its gradient
            return self._train_step(X, Y, self._no_dx, True, True, kind, h, reg, self._no_penalty, rows,
                                    *self.workspace(rows, self.train_work), *arrays, *state, *masks)
        value, grads = self._grads(X, Y, self._no_dx, True, True, arrays, masks, row_shares)
        for k, penalised in enumerate(self.penalised):
            fused_update(arrays[k].ravel(), grads[k].ravel(), state[2 * k], state[2 * k + 1], kind, h,
                         reg if penalised else self._no_penalty)   # flat: one compiled signature for every shape
        return value
