#!/usr/bin/python3
"""Fits 2^f on [-1/2, 1/2] by a polynomial of the given degree, minimax in
relative error (Lawson's iteration on a dense grid), and prints its
coefficients (constant term first) and its largest relative error with
the coefficients and Horner's steps in float32. runtime/cpu/vector_math.inc
uses the degree-3 fit for softmax weights that are rounded to bfloat16
(exp2_nonpositive_coarse).

usage: scripts/fit_exp2.py [degree]   (default 3)"""

import sys

import numpy as np


def fit(degree, iterations=200):
    f = np.linspace(-0.5, 0.5, 200001)
    y = 2.0**f
    basis = np.vander(f, degree + 1, increasing=True)
    weight = np.ones_like(f)
    for _ in range(iterations):
        c = np.linalg.lstsq(basis * (weight / y)[:, None], weight, rcond=None)[0]
        err = (basis @ c - y) / y
        weight = weight * np.sqrt(np.abs(err))
        weight /= weight.max()
    # The error as float32 evaluates it.
    c32 = c.astype(np.float32)
    x = f.astype(np.float32)
    p = np.full_like(x, c32[-1])
    for k in range(degree - 1, -1, -1):
        p = p * x + c32[k]
    return c, float(np.abs((p.astype(np.float64) - y) / y).max())


def main():
    degree = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    c, err = fit(degree)
    print("coefficients (f^0 first):", ", ".join(f"{v:.10e}" for v in c))
    print(f"largest relative error in float32: {err:.2e}")


if __name__ == "__main__":
    main()
