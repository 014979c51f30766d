"""Element-wise helpers and matrix products shared by every generated network.

Compiled for whatever dtype they are called with (float32 kernels stay float32:
zeros come from the arrays' own dtype). Products on C-contiguous arrays: BLAS
(np.dot) for large layers, loops for small ones (no call overhead). Dense layers'
linear algebra (z = A W^T + b; gW, gb and the delta below) for networks whose entry
points are assembled in Python. Every kernel releases the GIL (nogil): those entry
points call them from the threads of a batch's shares.
"""
import numpy as np
from numba import njit

FASTMATH = {"arcp", "contract", "nsz", "reassoc"}   # no nnan/ninf: inf/nan keep IEEE meaning


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def mul_inplace(D, G):
    """D *= G element by element (same shape, C-contiguous)."""
    d = D.reshape(D.size)
    g = G.reshape(G.size)
    for k in range(d.size):
        d[k] *= g[k]


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def mul_into(A, M, out):
    """out = A * M element by element (same shape, C-contiguous)."""
    a = A.reshape(A.size)
    mk = M.reshape(M.size)
    o = out.reshape(out.size)
    for k in range(o.size):
        o[k] = a[k] * mk[k]


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def mm_abt(A, B, out):
    """out = A @ B.T (BLAS gemm)."""
    np.dot(A, B.T, out)


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def mm_ab(A, B, out):
    """out = A @ B (BLAS gemm)."""
    np.dot(A, B, out)


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def mm_atb(A, B, out):
    """out = A.T @ B (BLAS gemm)."""
    np.dot(A.T, B, out)


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def mm_abt_small(A, B, out):
    """out = A @ B.T (loops, for small layers)."""
    m, n = A.shape
    p = B.shape[0]
    zero = out.dtype.type(0.0)
    for e in range(m):
        for i in range(p):
            s = zero
            for j in range(n):
                s += A[e, j] * B[i, j]
            out[e, i] = s


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def mm_ab_small(A, B, out):
    """out = A @ B (loops, for small layers)."""
    m, n = A.shape
    p = B.shape[1]
    zero = out.dtype.type(0.0)
    for e in range(m):
        for i in range(p):
            out[e, i] = zero
        for j in range(n):
            d = A[e, j]
            for i in range(p):
                out[e, i] += d * B[j, i]


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def mm_atb_small(A, B, out):
    """out = A.T @ B (loops, for small layers)."""
    m, n = A.shape
    p = B.shape[1]
    zero = out.dtype.type(0.0)
    for j in range(n):
        for i in range(p):
            out[j, i] = zero
    for e in range(m):
        for j in range(n):
            d = A[e, j]
            for i in range(p):
                out[j, i] += d * B[e, i]


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def _add_bias(Z, b):
    for e in range(Z.shape[0]):
        for i in range(Z.shape[1]):
            Z[e, i] += b[i]


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def _bias_grad(D, gb):
    for i in range(D.shape[1]):
        gb[i] = gb.dtype.type(0.0)
    for e in range(D.shape[0]):
        for i in range(D.shape[1]):
            gb[i] += D[e, i]


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def dense_linear(A_in, W, b, Z):
    """Z = A_in W^T + b (BLAS)."""
    mm_abt(A_in, W, Z)
    _add_bias(Z, b)


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def dense_linear_small(A_in, W, b, Z):
    """Z = A_in W^T + b (loops, for small layers)."""
    mm_abt_small(A_in, W, Z)
    _add_bias(Z, b)


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def dense_grads(D, A_in, W, gW, gb, D_in):
    """gW = D^T A_in, gb = the sum of D's rows; D_in = D W unless D_in.size == 0 (BLAS)."""
    mm_atb(D, A_in, gW)
    _bias_grad(D, gb)
    if D_in.size > 0:
        mm_ab(D, W, D_in)


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def dense_grads_small(D, A_in, W, gW, gb, D_in):
    """gW = D^T A_in, gb = the sum of D's rows; D_in = D W unless D_in.size == 0 (loops)."""
    mm_atb_small(D, A_in, gW)
    _bias_grad(D, gb)
    if D_in.size > 0:
        mm_ab_small(D, W, D_in)
