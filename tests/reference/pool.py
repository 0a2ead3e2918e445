"""Pooling references in float64, plain loops over (n, c, oh, ow), NCHW.

They follow torch's CPU kernels: output size with ceil_mode (the last window must start in
the input or its left padding); max pooling scans each window row-major from (-inf, first
in-input position) and takes v when v > best or v is NaN (so ties keep the first index and
the last NaN wins); avg pooling divides by the window clipped to input+padding
(count_include_pad) or by its in-input count.
"""

import math

import numpy as np


def out_size(n, k, s, p, d, ceil_mode):
    num = n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    o = num // s + 1
    if ceil_mode and (o - 1) * s >= n + p:
        o -= 1
    return o


def _geom(x_shape, k, s, p, d, ceil_mode):
    H, W = x_shape[-2:]
    return (out_size(H, k[0], s[0], p[0], d[0], ceil_mode),
            out_size(W, k[1], s[1], p[1], d[1], ceil_mode))


def max_pool2d(x, k, s, p, d=(1, 1), ceil_mode=False):
    """(y float64, indices int64) for x of shape (N, C, H, W)."""
    x = np.asarray(x, dtype=np.float64)
    N, C, H, W = x.shape
    OH, OW = _geom(x.shape, k, s, p, d, ceil_mode)
    y = np.empty((N, C, OH, OW))
    idx = np.empty((N, C, OH, OW), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            plane = x[n, c]
            for oh in range(OH):
                for ow in range(OW):
                    h0, w0 = oh * s[0] - p[0], ow * s[1] - p[1]
                    h1 = min(h0 + (k[0] - 1) * d[0] + 1, H)
                    w1 = min(w0 + (k[1] - 1) * d[1] + 1, W)
                    while h0 < 0:
                        h0 += d[0]
                    while w0 < 0:
                        w0 += d[1]
                    best, at = -math.inf, h0 * W + w0
                    for ih in range(h0, h1, d[0]):
                        for iw in range(w0, w1, d[1]):
                            v = plane[ih, iw]
                            if v > best or math.isnan(v):
                                best, at = v, ih * W + iw
                    y[n, c, oh, ow] = best
                    idx[n, c, oh, ow] = at
    return y, idx


def max_pool2d_backward(grad_y, indices, input_shape):
    N, C, H, W = input_shape
    gx = np.zeros((N, C, H * W))
    gy = np.asarray(grad_y, dtype=np.float64).reshape(N, C, -1)
    ix = np.asarray(indices).reshape(N, C, -1)
    for n in range(N):
        for c in range(C):
            for j in range(gy.shape[2]):
                gx[n, c, ix[n, c, j]] += gy[n, c, j]
    return gx.reshape(N, C, H, W)


def _avg_window(oh, ow, H, W, k, s, p, count_include_pad):
    h0, w0 = oh * s[0] - p[0], ow * s[1] - p[1]
    h1, w1 = min(h0 + k[0], H + p[0]), min(w0 + k[1], W + p[1])
    pool_size = (h1 - h0) * (w1 - w0)
    h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, H), min(w1, W)
    div = pool_size if count_include_pad else (h1 - h0) * (w1 - w0)
    return h0, h1, w0, w1, div


def avg_pool2d(x, k, s, p, ceil_mode=False, count_include_pad=True):
    x = np.asarray(x, dtype=np.float64)
    N, C, H, W = x.shape
    OH, OW = _geom(x.shape, k, s, p, (1, 1), ceil_mode)
    y = np.zeros((N, C, OH, OW))
    for oh in range(OH):
        for ow in range(OW):
            h0, h1, w0, w1, div = _avg_window(oh, ow, H, W, k, s, p, count_include_pad)
            if h0 < h1 and w0 < w1:
                y[:, :, oh, ow] = x[:, :, h0:h1, w0:w1].sum(axis=(2, 3)) / div
    return y


def avg_pool2d_backward(grad_y, input_shape, k, s, p, ceil_mode=False, count_include_pad=True):
    N, C, H, W = input_shape
    gy = np.asarray(grad_y, dtype=np.float64)
    gx = np.zeros((N, C, H, W))
    for oh in range(gy.shape[2]):
        for ow in range(gy.shape[3]):
            h0, h1, w0, w1, div = _avg_window(oh, ow, H, W, k, s, p, count_include_pad)
            if h0 < h1 and w0 < w1:
                gx[:, :, h0:h1, w0:w1] += (gy[:, :, oh, ow] / div)[:, :, None, None]
    return gx
