"""Rank correlation (Spearman's rho, ties given their average rank) without scipy, for the trajectory screen."""

from __future__ import annotations

import numpy as np


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 of ``values``; equal values share the mean of the ranks they span."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(len(values), dtype=np.float64)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rank correlation of ``a`` and ``b`` in [-1, 1]; None when either ranks all its values alike."""
    if len(a) != len(b):
        raise ValueError(f"spearman needs two sequences of one length, got {len(a)} and {len(b)}")
    ra, rb = average_ranks(np.asarray(a)), average_ranks(np.asarray(b))
    da, db = ra - ra.mean(), rb - rb.mean()
    scale = float(np.sqrt(np.sum(da * da) * np.sum(db * db)))
    if len(a) < 2 or scale == 0.0:
        return None
    return float(np.clip(np.sum(da * db) / scale, -1.0, 1.0))
