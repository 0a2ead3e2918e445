"""Plain NumPy float64 references for every op and every backward (the spec of each op).

One module per area: activation, gemm, conv, pool, loss, optim. Written for clarity, not
speed: loops over the kernel window where that is clearer than a trick.
"""
