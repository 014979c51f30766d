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
    """out = A @ B.T (loops, for small layers): dot products over the rows, in blocks of 2 rows
    of A by 4 rows of B (8 sums at once, each load serving 2 or 4 of them)."""
    m, n = A.shape
    p = B.shape[0]
    zero = out.dtype.type(0.0)
    e = 0
    while e + 2 <= m:
        i = 0
        while i + 4 <= p:
            s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = zero
            for j in range(n):
                a0, a1 = A[e, j], A[e + 1, j]
                b0, b1, b2, b3 = B[i, j], B[i + 1, j], B[i + 2, j], B[i + 3, j]
                s00 += a0 * b0
                s01 += a0 * b1
                s02 += a0 * b2
                s03 += a0 * b3
                s10 += a1 * b0
                s11 += a1 * b1
                s12 += a1 * b2
                s13 += a1 * b3
            out[e, i], out[e, i + 1], out[e, i + 2], out[e, i + 3] = s00, s01, s02, s03
            out[e + 1, i], out[e + 1, i + 1], out[e + 1, i + 2], out[e + 1, i + 3] = s10, s11, s12, s13
            i += 4
        while i < p:
            s0 = s1 = zero
            for j in range(n):
                s0 += A[e, j] * B[i, j]
                s1 += A[e + 1, j] * B[i, j]
            out[e, i], out[e + 1, i] = s0, s1
            i += 1
        e += 2
    if e < m:
        for i in range(p):
            s = zero
            for j in range(n):
                s += A[e, j] * B[i, j]
            out[e, i] = s


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def _mm_rows(A, B, out):
    """out (M, P) = A (M, K) @ B (K, P) as row updates out[m] += the sum of 4 terms
    A[m, k] B[k], two rows m at a time: the compiler vectorises the loop over P, and each
    load and store of out serves 4 multiply-adds. A is read outside the loop over P only,
    so any layout costs nothing: callers pass views typed 'A' (any layout), so that A @ B
    and A.T @ B share one compiled _mm_rows (each compile costs ~1.3 s of a cold start)."""
    M, P = out.shape
    K = B.shape[0]
    for m in range(M):
        for p in range(P):
            out[m, p] = 0
    k = 0
    while k + 4 <= K:
        m = 0
        while m + 2 <= M:
            a0, a1, a2, a3 = A[m, k], A[m, k + 1], A[m, k + 2], A[m, k + 3]
            c0, c1 = A[m + 1, k], A[m + 1, k + 1]
            c2, c3 = A[m + 1, k + 2], A[m + 1, k + 3]
            for p in range(P):
                b0, b1, b2, b3 = B[k, p], B[k + 1, p], B[k + 2, p], B[k + 3, p]
                out[m, p] += (a0 * b0 + a1 * b1) + (a2 * b2 + a3 * b3)
                out[m + 1, p] += (c0 * b0 + c1 * b1) + (c2 * b2 + c3 * b3)
            m += 2
        if m < M:
            a0, a1, a2, a3 = A[m, k], A[m, k + 1], A[m, k + 2], A[m, k + 3]
            for p in range(P):
                out[m, p] += (a0 * B[k, p] + a1 * B[k + 1, p]) + (a2 * B[k + 2, p] + a3 * B[k + 3, p])
        k += 4
    while k < K:
        for m in range(M):
            a = A[m, k]
            for p in range(P):
                out[m, p] += a * B[k, p]
        k += 1


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy", inline="always")
def mm_ab_small(A, B, out):
    """out = A @ B (loops, for small layers)."""
    _mm_rows(A[:, ::1], B, out)   # typed 'A' (any layout): see _mm_rows


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy", inline="always")
def mm_atb_small(A, B, out):
    """out = A.T @ B (loops, for small layers)."""
    _mm_rows(A.T[:, ::1], B, out)


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy", inline="always")
def _add_bias(Z, b):
    for e in range(Z.shape[0]):
        for i in range(Z.shape[1]):
            Z[e, i] += b[i]


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy", inline="always")
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
