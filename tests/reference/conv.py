"""conv2d references in float64: plain loops over the kernel taps (i, j).

padding is (top, bottom, left, right); stride and dilation are (h, w) pairs.
For each tap, the input pixels it reads for every output pixel form a strided slice of the
zero-padded input; forward adds w[:, :, i, j] times that slice, backward scatters back into it.
"""

import numpy as np


def _geometry(x, w, stride, padding, dilation):
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    pt, pb, pl, pr = padding
    sh, sw = stride
    dh, dw = dilation
    OH = (H + pt + pb - dh * (kh - 1) - 1) // sh + 1
    OW = (W + pl + pr - dw * (kw - 1) - 1) // sw + 1
    return OH, OW


def _tap(i, j, OH, OW, stride, dilation):
    """Index of the padded-input window read by tap (i, j)."""
    sh, sw = stride
    dh, dw = dilation
    return (slice(i * dh, i * dh + sh * (OH - 1) + 1, sh),
            slice(j * dw, j * dw + sw * (OW - 1) + 1, sw))


def conv2d(x, w, bias=None, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    Og = O // groups
    pt, pb, pl, pr = padding
    OH, OW = _geometry(x, w, stride, padding, dilation)
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    y = np.zeros((N, O, OH, OW))
    for g in range(groups):
        xs = xp[:, g * Cg:(g + 1) * Cg]
        ws = w[g * Og:(g + 1) * Og]
        for i in range(kh):
            for j in range(kw):
                rows, cols = _tap(i, j, OH, OW, stride, dilation)
                patch = xs[:, :, rows, cols]                       # N, Cg, OH, OW
                y[:, g * Og:(g + 1) * Og] += np.einsum("nchw,oc->nohw", patch, ws[:, :, i, j])
    if bias is not None:
        y += np.asarray(bias, np.float64)[None, :, None, None]
    return y


def conv2d_backward(grad_y, x, w, stride=(1, 1), padding=(0, 0, 0, 0), dilation=(1, 1),
                    groups=1):
    """(grad_x, grad_w, grad_b) of sum(grad_y * conv2d(x, w, b))."""
    gy = np.asarray(grad_y, np.float64)
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    N, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    Og = O // groups
    pt, pb, pl, pr = padding
    OH, OW = _geometry(x, w, stride, padding, dilation)
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    gxp = np.zeros_like(xp)
    gw = np.zeros_like(w)
    for g in range(groups):
        cs, os_ = slice(g * Cg, (g + 1) * Cg), slice(g * Og, (g + 1) * Og)
        for i in range(kh):
            for j in range(kw):
                rows, cols = _tap(i, j, OH, OW, stride, dilation)
                gxp[:, cs, rows, cols] += np.einsum("nohw,oc->nchw", gy[:, os_], w[os_, :, i, j])
                gw[os_, :, i, j] = np.einsum("nohw,nchw->oc", gy[:, os_], xp[:, cs, rows, cols])
    gx = gxp[:, :, pt:pt + H, pl:pl + W]
    return gx, gw, gy.sum(axis=(0, 2, 3))


def same_padding(w_shape, dilation):
    """torch's padding='same': total d*(k-1), the odd one extra at the bottom/right."""
    out = []
    for d, k in zip(dilation, w_shape[2:]):
        total = d * (k - 1)
        out += [total // 2, total - total // 2]
    return tuple(out)
