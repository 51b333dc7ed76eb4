#!/usr/bin/python3
"""Prints the coefficient table of the AVX-512 GELU (runtime/cpu/activation_loops.inc).

0.5 * erf(a) on each of the 32 intervals [i/8, (i+1)/8) of a = |x| / sqrt(2),
as a polynomial of degree 4 in f = 8a - i (in [0, 1)): a least-squares fit
on 200 Chebyshev nodes of the interval (within 2 % of the minimax error),
in float64, then rounded to float32. The last interval is the constant 0.5
instead (0.5 erf(a) is within 2.2e-8 of it there), so that from it on (and
past the clamp) GELU is x exactly for positive x and 0 for negative x:
the fitted polynomial ended at 0.49999997, which made GELU(-100) -3e-6.
Prints the worst error of the rounded table (Horner in float64) and the
table as C++ rows, lowest degree first.
Run with /usr/bin/python3 (Debian's python3-numpy).
"""
import math

import numpy as np

INTERVALS, DEGREE, NODES = 32, 4, 200
WIDTH = 4.0 / INTERVALS  # of an interval, in a


def main():
    rows, worst = [], 0.0
    grid = np.linspace(0.0, 1.0, 4001)
    for i in range(INTERVALS):
        if i == INTERVALS - 1:
            coefficients = np.zeros(DEGREE + 1, dtype=np.float32)
            coefficients[0] = 0.5
        else:
            f = 0.5 - 0.5 * np.cos(np.pi * (np.arange(NODES) + 0.5) / NODES)
            want = np.array([0.5 * math.erf((i + t) * WIDTH) for t in f])
            coefficients = np.polynomial.polynomial.polyfit(f, want, DEGREE).astype(np.float32)
        got = np.zeros_like(grid)
        for c in coefficients[::-1]:
            got = got * grid + float(c)
        err = max(abs(got[j] - 0.5 * math.erf((i + grid[j]) * WIDTH)) for j in range(len(grid)))
        worst = max(worst, err)
        rows.append(coefficients)
    print(f"// worst |error| of 0.5 erf(a): {worst:.2e}")
    for k in range(DEGREE + 1):
        print("    {" + ", ".join(f"{float(r[k]):.9e}f" for r in rows) + "},")


if __name__ == "__main__":
    main()
