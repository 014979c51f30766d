"""Convolution, pooling and flatten kernels (any float dtype; Numba compiles one per dtype).
Layout: x (batch, channels, height, width); W (filters, channels, kh, kw), as PyTorch.
Strategy (measured with benchmarks/bench_conv_ops.py and bench_train_step.py):
one thread per call, no prange (the generated module's Python API runs shares
of a large batch in threads of its own). Per call the kernels allocate their
work arrays once and, per example, build the im2col matrix cols
(C*kh*kw, Ho*Wo) straight from x (no padded copy: a fast path for stride 1
without padding, bounds tests otherwise). The forward and input-gradient
products go to BLAS (np.dot) while OpenBLAS keeps them on the calling thread
(m n k < 2^18: LeNet-5's are 2x faster there), else to loops the compiler
vectorises, blocked so that each load or store serves several multiply-adds
(no BLAS call may start OpenBLAS's threads beside the module's own); dW
stays in loops (as fast as BLAS per example, and summed in place):
- forward, out[n] (F, Ho*Wo) = W (F, C*kh*kw) @ cols, written in place in the
  (batch, F, Ho, Wo) layout, then + b;
- input gradient, dcols = W^T @ dz[n], then col2im adds it into dx[n];
- dW as dot products over the planes of a few examples at once (_DW_COLUMNS),
  summed over the batch in place.
Backward writes dW, db as sums over the batch of the given dz (scale dz by
1/m beforehand for a mean loss); an empty dx (dx.size == 0) skips the input
gradient (first layer).
Small layers (small_layer: stride 1, no padding, products BLAS keeps on one thread, as
LeNet-5's and the digits CNN's) call conv2d_forward_small / conv2d_backward_small:
the same kernels with only those paths compiled (a first conv network's cold start
compiles 3.0 s of CPU for its convolutions instead of 4.7 s).
Max pooling keeps the flat in-plane index of the first maximum of each window
in row-major order (ties go to it, as PyTorch); 2x2 windows with stride 2
have their own unrolled path. Average pooling takes its factor as an argument:
the generated module passes the factor derived by SymPy
(symnet.derive.conv.generic_avgpool), printed per layer in the kernel's dtype.
"""
import numpy as np
from numba import njit

from .arrays import _mm_rows

_CONV_FASTMATH = {"reassoc", "contract"}   # reorder sums (vectorised dot products); no nnan/ninf
# OpenBLAS runs a gemm with m n k below SMP_THRESHOLD_MIN * GEMM_MULTITHREAD_THRESHOLD = 2^18 on
# the calling thread: such products go to BLAS (2x faster than the loops for LeNet-5's);
# larger ones stay in loops, so that no BLAS call starts OpenBLAS's threads.
_BLAS_ONE_THREAD_MNK = 1 << 18
# dW sums dot products over the plane of several examples at once (at least this many
# columns): fewer horizontal sums and stores per multiply-add (LeNet-5's conv3, 8x8 planes:
# 444 -> 294 us a batch)
_DW_COLUMNS = 256


@njit(cache=True, nogil=True)
def _conv_product(A, B, out):
    """out = A @ B (C-contiguous): BLAS below the single-thread size, else the loop product
    of the small dense layers (arrays._mm_rows, typed as theirs: one compiled signature)."""
    if A.shape[0] * A.shape[1] * B.shape[1] < _BLAS_ONE_THREAD_MNK:
        np.dot(A, B, out)
    else:
        _mm_rows(A[:, ::1], B, out)


@njit(cache=True, nogil=True, inline="always")
def _conv_product_blas(A, B, out):
    """out = A @ B by BLAS: _conv_product of a small layer (see small_layer)."""
    np.dot(A, B, out)


@njit(cache=True, nogil=True, inline="always")
def _conv_im2col_plain(x, n, kh, kw, stride, ph, pw, ho, wo, cols, col0):
    """_conv_im2col for stride 1 without padding (stride, ph, pw are not read)."""
    C = x.shape[1]
    col0 = max(col0, 0)   # known non-negative: the indices below need no wrap-around test (vectorised)
    for c in range(C):
        for m in range(kh):
            for q in range(kw):
                row = (c * kh + m) * kw + q
                for i in range(ho):
                    base = col0 + i * wo
                    for j in range(wo):
                        cols[row, base + j] = x[n, c, i + m, j + q]


@njit(cache=True, nogil=True)
def _conv_im2col(x, n, kh, kw, stride, ph, pw, ho, wo, cols, col0):
    """cols[(c*kh + m)*kw + q, col0 + i*wo + j] = x[n, c, stride*i + m - ph, stride*j + q - pw],
    0 where that falls in the zero padding."""
    if stride == 1 and ph == 0 and pw == 0:
        _conv_im2col_plain(x, n, kh, kw, stride, ph, pw, ho, wo, cols, col0)
        return
    C, H, Wd = x.shape[1], x.shape[2], x.shape[3]
    col0 = max(col0, 0)
    for c in range(C):
        for m in range(kh):
            for q in range(kw):
                row = (c * kh + m) * kw + q
                for i in range(ho):
                    r = stride * i + m - ph
                    base = col0 + i * wo
                    if r < 0 or r >= H:
                        for j in range(wo):
                            cols[row, base + j] = 0
                    else:
                        for j in range(wo):
                            v = stride * j + q - pw
                            if v < 0 or v >= Wd:
                                cols[row, base + j] = 0
                            else:
                                cols[row, base + j] = x[n, c, r, v]


@njit(cache=True, nogil=True, inline="always")
def _conv_zero_plane(dx, n):
    """dx[n] = 0."""
    d = dx[n]
    for c in range(dx.shape[1]):
        for u in range(dx.shape[2]):
            for v in range(dx.shape[3]):
                d[c, u, v] = 0


@njit(cache=True, nogil=True, inline="always")
def _conv_col2im_plain(cols, kh, kw, stride, ph, pw, ho, wo, dx, n):
    """_conv_col2im for stride 1 without padding (stride, ph, pw are not read)."""
    _conv_zero_plane(dx, n)
    d = dx[n]
    for c in range(dx.shape[1]):
        for m in range(kh):
            for q in range(kw):
                row = (c * kh + m) * kw + q
                for i in range(ho):
                    base = i * wo
                    for j in range(wo):
                        d[c, i + m, j + q] += cols[row, base + j]


@njit(cache=True, nogil=True)
def _conv_col2im(cols, kh, kw, stride, ph, pw, ho, wo, dx, n):
    """dx[n] = the adjoint of _conv_im2col applied to cols (sums where windows overlap;
    entries that fell in the padding are dropped)."""
    if stride == 1 and ph == 0 and pw == 0:
        _conv_col2im_plain(cols, kh, kw, stride, ph, pw, ho, wo, dx, n)
        return
    _conv_zero_plane(dx, n)
    C, H, Wd = dx.shape[1], dx.shape[2], dx.shape[3]
    d = dx[n]
    for c in range(C):
        for m in range(kh):
            for q in range(kw):
                row = (c * kh + m) * kw + q
                for i in range(ho):
                    r = stride * i + m - ph
                    if r >= 0 and r < H:
                        base = i * wo
                        for j in range(wo):
                            v = stride * j + q - pw
                            if v >= 0 and v < Wd:
                                d[c, r, v] += cols[row, base + j]


@njit(cache=True, nogil=True)
def _conv_add_bias(o, b):
    """o[f] += b[f] for the rows of o (F, P)."""
    for f in range(o.shape[0]):
        bf = b[f]
        for p in range(o.shape[1]):
            o[f, p] += bf


@njit(cache=True, nogil=True, fastmath=_CONV_FASTMATH)
def _conv_dw_db(d2, cols, dW2, db):
    """dW2 (F, K) += d2 (F, P) @ cols (K, P)^T as dot products over P, in blocks of 2 rows f
    by 4 rows k (8 sums held in registers, each load serving 2 or 4 of them); db += the row
    sums of d2."""
    F, P = d2.shape
    K = cols.shape[0]
    for f in range(F):
        s = db[f]
        for p in range(P):
            s += d2[f, p]
        db[f] = s
    f = 0
    while f + 2 <= F:
        k = 0
        while k + 4 <= K:
            s00, s01, s02, s03 = dW2[f, k], dW2[f, k + 1], dW2[f, k + 2], dW2[f, k + 3]
            s10, s11, s12, s13 = dW2[f + 1, k], dW2[f + 1, k + 1], dW2[f + 1, k + 2], dW2[f + 1, k + 3]
            for p in range(P):
                d0, d1 = d2[f, p], d2[f + 1, p]
                c0, c1, c2, c3 = cols[k, p], cols[k + 1, p], cols[k + 2, p], cols[k + 3, p]
                s00 += d0 * c0
                s01 += d0 * c1
                s02 += d0 * c2
                s03 += d0 * c3
                s10 += d1 * c0
                s11 += d1 * c1
                s12 += d1 * c2
                s13 += d1 * c3
            dW2[f, k], dW2[f, k + 1], dW2[f, k + 2], dW2[f, k + 3] = s00, s01, s02, s03
            dW2[f + 1, k], dW2[f + 1, k + 1], dW2[f + 1, k + 2], dW2[f + 1, k + 3] = s10, s11, s12, s13
            k += 4
        while k < K:
            s0, s1 = dW2[f, k], dW2[f + 1, k]
            for p in range(P):
                c = cols[k, p]
                s0 += d2[f, p] * c
                s1 += d2[f + 1, p] * c
            dW2[f, k], dW2[f + 1, k] = s0, s1
            k += 1
        f += 2
    if f < F:
        for k in range(K):
            s = dW2[f, k]
            for p in range(P):
                s += d2[f, p] * cols[k, p]
            dW2[f, k] = s


def _forward(im2col, product):
    """conv2d_forward's body calling im2col and product: the general kernel with the general
    helpers, the small one with only their fast paths (inlined into each: never compiled alone)."""
    def forward(x, W, b, stride, ph, pw, out):
        F, kh, kw = W.shape[0], W.shape[2], W.shape[3]
        ho, wo = out.shape[2], out.shape[3]
        K, P = W.shape[1] * kh * kw, ho * wo
        W2 = W.reshape(F, K)
        cols = np.empty((K, P), x.dtype)
        for n in range(x.shape[0]):
            im2col(x, n, kh, kw, stride, ph, pw, ho, wo, cols, 0)
            o = out[n].reshape(F, P)
            product(W2, cols, o)
            _conv_add_bias(o, b)
    return njit(nogil=True, inline="always")(forward)


def _backward(im2col, product, col2im):
    """conv2d_backward's body calling im2col, product and col2im (as _forward)."""
    def backward(x, W, dz, stride, ph, pw, dW, db, dx):
        F, kh, kw = W.shape[0], W.shape[2], W.shape[3]
        ho, wo = dz.shape[2], dz.shape[3]
        K, P = W.shape[1] * kh * kw, ho * wo
        W2T = np.ascontiguousarray(W.reshape(F, K).T)
        dW2 = dW.reshape(F, K)
        for f in range(F):
            db[f] = 0
            for k in range(K):
                dW2[f, k] = 0
        want_dx = dx.size > 0
        N = x.shape[0]
        G = max(1, min(N, _DW_COLUMNS // P))   # examples per dW product
        cols = np.empty((K, G * P), x.dtype)
        dg = np.empty((F, G * P), x.dtype)
        dcols = np.empty((K, P) if want_dx else (0, 0), x.dtype)
        for n0 in range(0, N, G):
            g = min(G, N - n0)
            for t in range(g):
                im2col(x, n0 + t, kh, kw, stride, ph, pw, ho, wo, cols, t * P)
                d2 = dz[n0 + t].reshape(F, P)
                if G > 1:
                    _conv_copy_columns(d2, dg, t * P)
                if want_dx:
                    product(W2T, d2, dcols)
                    col2im(dcols, kh, kw, stride, ph, pw, ho, wo, dx, n0 + t)
            if G == 1:
                _conv_dw_db(dz[n0].reshape(F, P), cols, dW2, db)
            else:
                for t in range(g, G):   # the last group's unused columns add nothing
                    _conv_fill(cols, t * P, P, 0)
                    _conv_fill(dg, t * P, P, 0)
                _conv_dw_db(dg, cols, dW2, db)
    return njit(nogil=True, inline="always")(backward)


@njit(cache=True, nogil=True)
def conv2d_forward(x, W, b, stride, ph, pw, out):
    """out[n, f] = b[f] + sum_c W[f, c] (cross-correlated with) x[n, c] (zero-padded)."""
    _FORWARD(x, W, b, stride, ph, pw, out)


@njit(cache=True, nogil=True)
def conv2d_forward_small(x, W, b, stride, ph, pw, out):
    """conv2d_forward of a small layer (see small_layer): only its path compiled."""
    _check_small(stride, ph, pw)
    _FORWARD_SMALL(x, W, b, stride, ph, pw, out)


@njit(cache=True, nogil=True)
def conv2d_backward(x, W, dz, stride, ph, pw, dW, db, dx):
    """dW[f,c,m,q] = sum_n,i,j dz[n,f,i,j] x~[n,c,s i+m,s j+q]; db[f] = sum dz[n,f];
    dx = the input gradient (full convolution with the flipped kernel, cropped), unless dx.size == 0."""
    _BACKWARD(x, W, dz, stride, ph, pw, dW, db, dx)


@njit(cache=True, nogil=True)
def conv2d_backward_small(x, W, dz, stride, ph, pw, dW, db, dx):
    """conv2d_backward of a small layer (see small_layer): only its path compiled."""
    _check_small(stride, ph, pw)
    _BACKWARD_SMALL(x, W, dz, stride, ph, pw, dW, db, dx)


@njit(cache=True, nogil=True)
def _check_small(stride, ph, pw):
    if stride != 1 or ph != 0 or pw != 0:
        raise ValueError("conv2d_*_small: stride 1 and no padding only")


def small_layer(filters, channels, kh, kw, ho, wo, stride, pads) -> bool:
    """Whether a conv layer may call conv2d_forward_small / conv2d_backward_small: stride 1,
    no padding, and products (filters x channels kh kw x ho wo, forward and input gradient)
    that BLAS runs on the calling thread. Those kernels compile only that path: half the
    compile of LeNet-5's convolutions (a first conv network's cold start)."""
    return stride == 1 and not any(pads) and filters * channels * kh * kw * ho * wo < _BLAS_ONE_THREAD_MNK


@njit(cache=True, nogil=True)
def _conv_copy_columns(src, dst, col0):
    """dst[:, col0:col0 + src.shape[1]] = src."""
    col0 = max(col0, 0)
    for r in range(src.shape[0]):
        for p in range(src.shape[1]):
            dst[r, col0 + p] = src[r, p]


@njit(cache=True, nogil=True)
def _conv_fill(a, col0, width, value):
    """a[:, col0:col0 + width] = value."""
    col0 = max(col0, 0)
    for r in range(a.shape[0]):
        for p in range(col0, col0 + width):
            a[r, p] = value


_FORWARD = _forward(_conv_im2col, _conv_product)
_FORWARD_SMALL = _forward(_conv_im2col_plain, _conv_product_blas)
_BACKWARD = _backward(_conv_im2col, _conv_product, _conv_col2im)
_BACKWARD_SMALL = _backward(_conv_im2col_plain, _conv_product_blas, _conv_col2im_plain)


@njit(cache=True, nogil=True, inline="always")
def _pool_max_plane(x, n, c, size, stride, out, argmax):
    """One (n, c) plane of maxpool2d_forward."""
    Wd = x.shape[3]
    ho, wo = out.shape[2], out.shape[3]
    if size == 2 and stride == 2:
        for i in range(ho):
            u = 2 * i
            for j in range(wo):
                v = 2 * j
                best = x[n, c, u, v]
                where = u * Wd + v
                a = x[n, c, u, v + 1]
                if a > best:
                    best = a
                    where = u * Wd + v + 1
                a = x[n, c, u + 1, v]
                if a > best:
                    best = a
                    where = (u + 1) * Wd + v
                a = x[n, c, u + 1, v + 1]
                if a > best:
                    best = a
                    where = (u + 1) * Wd + v + 1
                out[n, c, i, j] = best
                argmax[n, c, i, j] = where
        return
    for i in range(ho):
        for j in range(wo):
            u0, v0 = stride * i, stride * j
            best = x[n, c, u0, v0]
            where = u0 * Wd + v0
            for m in range(size):
                for q in range(size):
                    val = x[n, c, u0 + m, v0 + q]
                    if val > best:
                        best = val
                        where = (u0 + m) * Wd + v0 + q
            out[n, c, i, j] = best
            argmax[n, c, i, j] = where


@njit(cache=True, nogil=True)
def maxpool2d_forward(x, size, stride, out, argmax):
    """out = the maximum of each size x size window; argmax = its flat in-plane index
    u * width + v (the first maximum in row-major order)."""
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            _pool_max_plane(x, n, c, size, stride, out, argmax)


@njit(cache=True, nogil=True)
def maxpool2d_backward(dout, argmax, dx):
    """dx = dout routed to the argmax of each window (overlapping windows add)."""
    N, C, H, Wd = dx.shape
    ho, wo = dout.shape[2], dout.shape[3]
    for n in range(N):
        for c in range(C):
            d = dx[n, c].reshape(H * Wd)     # flat in-plane index, as argmax holds it
            for k in range(H * Wd):
                d[k] = 0
            for i in range(ho):
                for j in range(wo):
                    d[argmax[n, c, i, j]] += dout[n, c, i, j]


@njit(cache=True, nogil=True)
def avgpool2d_scaled_forward(x, size, stride, scale, out):
    """out = scale times the sum of each size x size window (scale: the derived factor)."""
    N, C = x.shape[0], x.shape[1]
    ho, wo = out.shape[2], out.shape[3]
    for n in range(N):
        for c in range(C):
            for i in range(ho):
                for j in range(wo):
                    acc = x[n, c, stride * i, stride * j] * 0
                    for m in range(size):
                        for q in range(size):
                            acc += x[n, c, stride * i + m, stride * j + q]
                    out[n, c, i, j] = acc * scale


@njit(cache=True, nogil=True)
def avgpool2d_scaled_backward(dout, size, stride, scale, dx):
    """dx = each window's gradient times scale (the derived factor), spread over the window."""
    N, C, H, Wd = dx.shape
    ho, wo = dout.shape[2], dout.shape[3]
    for n in range(N):
        for c in range(C):
            d = dx[n, c].reshape(H * Wd)
            for k in range(H * Wd):
                d[k] = 0
            for i in range(ho):
                for j in range(wo):
                    g = dout[n, c, i, j] * scale
                    for m in range(size):
                        for q in range(size):
                            d[(stride * i + m) * Wd + stride * j + q] += g


@njit(cache=True, nogil=True)
def flatten_forward(x):
    """(batch, C, H, W) -> (batch, C*H*W) in C, H, W order (a view of a contiguous x)."""
    return np.ascontiguousarray(x).reshape((x.shape[0], x.size // x.shape[0]))


@njit(cache=True, nogil=True)
def flatten_backward(dout, dx):
    """dx (batch, C, H, W) = dout (batch, C*H*W) reshaped."""
    flat = dx.reshape(dx.size)
    src = dout.reshape(dout.size)
    for k in range(src.size):
        flat[k] = src[k]
