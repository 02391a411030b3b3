"""Value checks of a merged config: the one place that says which numbers and names make sense.

Types are checked while merging (``config._coerce``); here each numeric key gets its range and
each choice its allowed values, so ``SOLVER.IMS_PER_BATCH 0`` or ``MODEL.DEVICE tpu`` is a
``ConfigError`` naming the key, the value and what is expected, before anything runs. fast-reid's
own files and defaults pass unchanged.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable

DEVICE_PATTERN = re.compile(r"cpu|cuda(:\d+)?|mps")

Check = Callable[[Any], bool]


def _at_least(low: float, what: str = "a number") -> tuple[Check, str]:
    return (lambda v: math.isfinite(v) and v >= low), f"{what} >= {low:g}"


def _above(low: float) -> tuple[Check, str]:
    return (lambda v: math.isfinite(v) and v > low), f"a number > {low:g}"


PROBABILITY: tuple[Check, str] = (lambda v: math.isfinite(v) and 0.0 <= v <= 1.0, "a probability in [0, 1]")
POSITIVE_INT = _at_least(1, "an integer")
NON_NEGATIVE_INT = _at_least(0, "an integer")
NON_NEGATIVE = _at_least(0)


def _size(v: Any) -> bool:
    return len(v) == 2 and all(isinstance(x, int) and not isinstance(x, bool) and x >= 16 for x in v)


def _int_list(v: Any) -> bool:
    return all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in v)


RULES: dict[str, tuple[Check, str]] = {
    "MODEL.DEVICE": (lambda v: bool(DEVICE_PATTERN.fullmatch(v)), "cpu, cuda, cuda:N or mps"),
    "MODEL.BACKBONE.LAST_STRIDE": (lambda v: v in (1, 2), "1 or 2"),
    "MODEL.HEADS.NUM_CLASSES": NON_NEGATIVE_INT,
    "MODEL.HEADS.EMBEDDING_DIM": NON_NEGATIVE_INT,
    "INPUT.SIZE_TRAIN": (_size, "[height, width], two integers >= 16"),
    "INPUT.SIZE_TEST": (_size, "[height, width], two integers >= 16"),
    "INPUT.FLIP.PROB": PROBABILITY,
    "INPUT.REA.PROB": PROBABILITY,
    "INPUT.CJ.PROB": PROBABILITY,
    "INPUT.AUTOAUG.PROB": PROBABILITY,
    "INPUT.AUGMIX.PROB": PROBABILITY,
    "INPUT.RPT.PROB": PROBABILITY,
    "INPUT.DOWNSCALE.PROB": PROBABILITY,
    "INPUT.GRAYSCALE.PROB": PROBABILITY,
    "INPUT.DOWNSCALE.MIN_SCALE": (lambda v: 0 < v <= 1, "a factor in (0, 1]"),
    "INPUT.PADDING.SIZE": NON_NEGATIVE_INT,
    "DATALOADER.NUM_INSTANCE": POSITIVE_INT,
    "DATALOADER.NUM_WORKERS": NON_NEGATIVE_INT,
    "SOLVER.MAX_EPOCH": POSITIVE_INT,
    "SOLVER.IMS_PER_BATCH": POSITIVE_INT,
    "SOLVER.BASE_LR": _above(0),
    "SOLVER.BIAS_LR_FACTOR": _above(0),
    "SOLVER.HEADS_LR_FACTOR": _above(0),
    "SOLVER.MOMENTUM": NON_NEGATIVE,
    "SOLVER.WEIGHT_DECAY": NON_NEGATIVE,
    "SOLVER.WEIGHT_DECAY_NORM": NON_NEGATIVE,
    "SOLVER.WEIGHT_DECAY_BIAS": NON_NEGATIVE,
    "SOLVER.GAMMA": _above(0),
    "SOLVER.STEPS": (_int_list, "a list of epochs (integers >= 0)"),
    "SOLVER.ETA_MIN_LR": NON_NEGATIVE,
    "SOLVER.WARMUP_FACTOR": _above(0),
    "SOLVER.WARMUP_ITERS": NON_NEGATIVE_INT,
    "SOLVER.DELAY_EPOCHS": NON_NEGATIVE_INT,
    "SOLVER.FREEZE_ITERS": NON_NEGATIVE_INT,
    "SOLVER.CHECKPOINT_PERIOD": POSITIVE_INT,
    "SOLVER.CLIP_GRADIENTS.CLIP_VALUE": _above(0),
    "TEST.EVAL_PERIOD": NON_NEGATIVE_INT,
    "TEST.IMS_PER_BATCH": POSITIVE_INT,
    "TEST.METRIC": (lambda v: v in ("cosine", "euclidean"), "cosine or euclidean"),
    "TEST.AQE.QE_K": POSITIVE_INT,
    "TEST.AQE.QE_TIME": POSITIVE_INT,
    "TEST.AQE.ALPHA": NON_NEGATIVE,
    "TEST.RERANK.K1": POSITIVE_INT,
    "TEST.RERANK.K2": POSITIVE_INT,
    "TEST.RERANK.LAMBDA": PROBABILITY,
    "SEED": (lambda v: 0 <= v < 2**32, "an integer in [0, 2**32)"),
}


def _get(cfg: Any, key: str) -> Any:
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def problems(cfg: Any) -> list[str]:
    """Every value of ``cfg`` outside its allowed range, as ``KEY VALUE: expected ...``."""
    found = []
    for key, (ok, expected) in RULES.items():
        value = _get(cfg, key)
        try:
            good = ok(value)
        except TypeError:
            good = False
        if not good:
            found.append(f"{key} {value!r}: expected {expected}")
    return found
