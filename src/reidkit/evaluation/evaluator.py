"""One call from features (or a distance matrix) to the metrics fast-reid reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .distance import check_metric, pairwise_distance
from .query_expansion import average_query_expansion
from .rank import evaluate_rank, evaluate_rank_cuhk03
from .rerank import VARIANTS, k_reciprocal_rerank
from .roc import evaluate_roc

ID_KEYS = ("q_pids", "g_pids", "q_camids", "g_camids")


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, or a clear error for a missing or unreadable file."""
    if not path.is_file():
        raise FileNotFoundError(f"features file not found: {path}")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError(f"{path}: a single array ({path.suffix or 'no suffix'}), expected an .npz holding named "
                             "arrays (np.savez)")
        with data:
            return {k: data[k] for k in data.files}
    except ValueError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise ValueError(f"{path}: not a readable .npz file ({exc})") from None
    except Exception as exc:  # zipfile, zlib and EOF errors of truncated or damaged files
        raise ValueError(f"{path}: not a readable .npz file, truncated or damaged ({type(exc).__name__}: {exc})") from None


def load_features(path: str | Path) -> dict[str, np.ndarray]:
    """Read an ``.npz`` with ``q_feat``/``g_feat`` and/or ``distmat`` plus the four id arrays."""
    path = Path(path)
    arrays = read_npz(path)
    missing = [k for k in ID_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"{path}: missing arrays {', '.join(missing)} (expected {', '.join(ID_KEYS)})")
    has_feats = "q_feat" in arrays and "g_feat" in arrays
    if not has_feats and "distmat" not in arrays:
        raise ValueError(f"{path}: needs q_feat and g_feat, or distmat")
    return arrays


def load_query_gallery(query: str | Path, gallery: str | Path) -> dict[str, np.ndarray]:
    """Join two features files written by ``reid extract`` (``feats``, ``pids``, ``camids``) into the
    query/gallery arrays ``evaluate`` takes. Junk images (id -1) are dropped, as the dataset parsers do."""
    parts = {}
    for side, path in (("q", Path(query)), ("g", Path(gallery))):
        arrays = read_npz(path)
        if "feats" not in arrays:
            raise ValueError(f"{path}: no 'feats' array (expected a file written by reid extract)")
        if "pids" not in arrays or "camids" not in arrays:
            raise ValueError(f"{path}: no 'pids'/'camids': its image names do not follow the <id>_c<camera> "
                             "convention, so it cannot be evaluated")
        keep = arrays["pids"] != -1
        parts[f"{side}_feat"] = arrays["feats"][keep]
        parts[f"{side}_pids"] = arrays["pids"][keep]
        parts[f"{side}_camids"] = arrays["camids"][keep]
    if parts["q_feat"].shape[1] != parts["g_feat"].shape[1]:
        raise ValueError(f"{query} has {parts['q_feat'].shape[1]}-dim features but {gallery} has "
                         f"{parts['g_feat'].shape[1]}-dim ones: extract both with the same model")
    return parts


def evaluate(arrays: dict[str, np.ndarray], metric: str = "cosine", rerank: str | None = None,
             k1: int = 20, k2: int = 6, lambda_value: float = 0.3, aqe: bool = False, qe_k: int = 5,
             qe_times: int = 1, alpha: float = 3.0, roc: bool = True, cuhk03: bool = False,
             max_rank: int = 50) -> dict[str, Any]:
    """Rank-1/5/10, mAP and mINP in percent (and TPR@FPR as fractions with ``roc``).

    ``rerank`` is ``None``, ``"fastreid"`` (what fast-reid's evaluator does with TEST.RERANK) or
    ``"zhong"``. AQE and re-ranking need features; without them ``distmat`` is used as given.
    """
    check_metric(metric)
    if rerank is not None and rerank not in VARIANTS:
        raise ValueError(f"unknown re-ranking variant {rerank!r}: expected one of {', '.join(VARIANTS)}")
    ids = [arrays[k] for k in ID_KEYS]
    has_feats = "q_feat" in arrays and "g_feat" in arrays
    if (aqe or rerank) and not has_feats:
        raise ValueError("AQE and re-ranking need q_feat and g_feat, not only a distmat")
    if has_feats:
        q, g = arrays["q_feat"], arrays["g_feat"]
        if aqe:
            q, g = average_query_expansion(q, g, qe_times=qe_times, qe_k=qe_k, alpha=alpha)
        if rerank:
            dist = k_reciprocal_rerank(q, g, k1=k1, k2=k2, lambda_value=lambda_value, metric=metric,
                                       variant=rerank)
        elif "distmat" in arrays and not aqe:
            dist = arrays["distmat"]
        else:
            dist = pairwise_distance(q, g, metric)
    else:
        dist = arrays["distmat"]
    result = (evaluate_rank_cuhk03 if cuhk03 else evaluate_rank)(dist, *ids, max_rank=max_rank)
    out: dict[str, Any] = result.summary()
    if roc:
        out.update(evaluate_roc(dist, *ids))
    return out


def options_from_config(test_cfg: Any) -> dict[str, Any]:
    """:func:`evaluate` keyword arguments from a config's ``TEST`` node (fast-reid's keys)."""
    rerank = test_cfg["RERANK"]
    aqe = test_cfg["AQE"]
    return {"metric": test_cfg["METRIC"], "rerank": rerank["VARIANT"] if rerank["ENABLED"] else None,
            "k1": rerank["K1"], "k2": rerank["K2"], "lambda_value": rerank["LAMBDA"], "aqe": aqe["ENABLED"],
            "qe_k": aqe["QE_K"], "qe_times": aqe["QE_TIME"], "alpha": aqe["ALPHA"], "roc": test_cfg["ROC"]["ENABLED"]}


def format_table(metrics: dict[str, float], title: str = "") -> str:
    """A one-row text table, rank metrics in percent and TPR@FPR as fractions."""
    keys = list(metrics)
    cells = [f"{metrics[k]:.2f}" if not k.startswith("TPR") else f"{metrics[k]:.4f}" for k in keys]
    widths = [max(len(k), len(c)) for k, c in zip(keys, cells)]
    line = " | ".join(k.rjust(w) for k, w in zip(keys, widths))
    vals = " | ".join(c.rjust(w) for c, w in zip(cells, widths))
    head = [title] if title else []
    return "\n".join(head + [line, "-" * len(line), vals])


def format_comparison(rows: dict[str, dict[str, float]], title: str = "") -> str:
    """A text table with one row per named result (same metric keys in each), in percent."""
    keys = list(next(iter(rows.values())))
    names = list(rows)
    name_w = max(len(n) for n in names)
    cells = [[f"{rows[n][k]:.2f}" for k in keys] for n in names]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    line = " | ".join(["".ljust(name_w)] + [k.rjust(w) for k, w in zip(keys, widths)])
    body = [" | ".join([n.ljust(name_w)] + [c.rjust(w) for c, w in zip(row, widths)]) for n, row in zip(names, cells)]
    head = [title] if title else []
    return "\n".join(head + [line, "-" * len(line)] + body)
