"""Default configuration: fast-reid's keys and default values, plus the few reidkit adds.

Every key fast-reid's ``get_cfg()`` defines is here with the same default, so fast-reid's own
YAML files load unchanged. reidkit's additions are listed in ``REIDKIT_KEYS``.
"""

from __future__ import annotations

from typing import Any

_DEFAULTS: dict[str, Any] = {
    "MODEL": {
        "DEVICE": "cuda",
        "META_ARCHITECTURE": "Baseline",
        "FREEZE_LAYERS": [],
        "BACKBONE": {
            "NAME": "build_resnet_backbone",
            "DEPTH": "50x",
            "LAST_STRIDE": 1,
            "FEAT_DIM": 2048,
            "NORM": "BN",
            "WITH_IBN": False,
            "MIXSTYLE": {"ENABLED": False, "PROB": 0.5, "ALPHA": 0.1, "STAGES": [1, 2, 3]},
            "WITH_SE": False,
            "WITH_NL": False,
            "PRETRAIN": False,
            "PRETRAIN_PATH": "",
            "SIE_COE": 3.0,
            "STRIDE_SIZE": (16, 16),
            "DROP_PATH_RATIO": 0.1,
            "DROP_RATIO": 0.0,
            "ATT_DROP_RATE": 0.0,
        },
        "HEADS": {
            "NAME": "EmbeddingHead",
            "NORM": "BN",
            "NUM_CLASSES": 0,
            "EMBEDDING_DIM": 0,
            "WITH_BNNECK": False,
            "NECK_FEAT": "before",
            "POOL_LAYER": "GlobalAvgPool",
            # the exponent of GeneralizedMeanPooling(P) (fast-reid fixes it at 3)
            "GEM_P": 3.0,
            # what the model returns in eval mode: "after" the BNNeck (fast-reid) or "before" it (the
            # pooled feature), pooled by TEST_POOL_LAYER ("" = POOL_LAYER, the training pooling)
            "TEST_FEAT": "after",
            "TEST_POOL_LAYER": "",
            "CLS_LAYER": "Linear",
            "SCALE": 1,
            "MARGIN": 0.0,
        },
        "LOSSES": {
            "NAME": ("CrossEntropyLoss",),
            "CE": {"EPSILON": 0.0, "ALPHA": 0.2, "SCALE": 1.0},
            "FL": {"ALPHA": 0.25, "GAMMA": 2, "SCALE": 1.0},
            "TRI": {"MARGIN": 0.3, "NORM_FEAT": False, "HARD_MINING": False, "SCALE": 1.0},
            "CIRCLE": {"MARGIN": 0.25, "GAMMA": 128, "SCALE": 1.0},
            "COSFACE": {"MARGIN": 0.25, "GAMMA": 128, "SCALE": 1.0},
        },
        "PIXEL_MEAN": [0.485 * 255, 0.456 * 255, 0.406 * 255],
        "PIXEL_STD": [0.229 * 255, 0.224 * 255, 0.225 * 255],
        "WEIGHTS": "",
        "QUEUE_SIZE": 8192,
    },
    "KD": {
        "MODEL_CONFIG": [],
        "MODEL_WEIGHTS": [],
        "EMA": {"ENABLED": False, "MOMENTUM": 0.999},
    },
    "INPUT": {
        "SIZE_TRAIN": [256, 128],
        "SIZE_TEST": [256, 128],
        "CROP": {"ENABLED": False, "SIZE": [224, 224], "SCALE": [0.16, 1], "RATIO": [3.0 / 4.0, 4.0 / 3.0]},
        "AUTOAUG": {"ENABLED": False, "PROB": 0.0},
        "FLIP": {"ENABLED": False, "PROB": 0.5},
        "PADDING": {"ENABLED": False, "MODE": "constant", "SIZE": 10},
        "CJ": {"ENABLED": False, "PROB": 0.5, "BRIGHTNESS": 0.15, "CONTRAST": 0.15, "SATURATION": 0.1,
               "HUE": 0.1},
        "AFFINE": {"ENABLED": False},
        "AUGMIX": {"ENABLED": False, "PROB": 0.0},
        "REA": {"ENABLED": False, "PROB": 0.5, "VALUE": [0.485 * 255, 0.456 * 255, 0.406 * 255]},
        "RPT": {"ENABLED": False, "PROB": 0.5},
        # reidkit's: shrink by a random factor in [MIN_SCALE, 1] and enlarge back, so a model trained
        # on sharp crops also sees the blurry ones of distant, low-resolution cameras.
        "DOWNSCALE": {"ENABLED": False, "PROB": 0.5, "MIN_SCALE": 0.3},
        # reidkit's: the crop in grey (ITU-R 601 luma in all three channels), so that the model
        # also learns shape and texture where two cameras render colours differently.
        "GRAYSCALE": {"ENABLED": False, "PROB": 0.2},
    },
    "DATASETS": {
        "NAMES": ("Market1501",),
        "TESTS": ("Market1501",),
        "COMBINEALL": False,
        "ROOT": "datasets",
    },
    "DATALOADER": {
        "SAMPLER_TRAIN": "TrainingSampler",
        "NUM_INSTANCE": 4,
        "NUM_WORKERS": 8,
        "SET_WEIGHT": [],
        "STRICT": False,
    },
    "SOLVER": {
        "AMP": {"ENABLED": False},
        "MAX_EPOCH": 120,
        "OPT": "Adam",
        "BASE_LR": 3e-4,
        "BIAS_LR_FACTOR": 1.0,
        "HEADS_LR_FACTOR": 1.0,
        "MOMENTUM": 0.9,
        "NESTEROV": False,
        "WEIGHT_DECAY": 0.0005,
        "WEIGHT_DECAY_NORM": 0.0005,
        "WEIGHT_DECAY_BIAS": 0.0005,
        "SCHED": "MultiStepLR",
        "STEPS": [30, 55],
        "GAMMA": 0.1,
        "ETA_MIN_LR": 1e-7,
        "WARMUP_FACTOR": 0.1,
        "WARMUP_ITERS": 1000,
        "WARMUP_METHOD": "linear",
        "DELAY_EPOCHS": 0,
        "FREEZE_ITERS": 0,
        "CHECKPOINT_PERIOD": 20,
        "IMS_PER_BATCH": 64,
        "CLIP_GRADIENTS": {"ENABLED": False, "CLIP_TYPE": "norm", "CLIP_VALUE": 5.0, "NORM_TYPE": 2.0},
    },
    "TEST": {
        "EVAL_PERIOD": 20,
        "IMS_PER_BATCH": 64,
        "METRIC": "cosine",
        "ROC": {"ENABLED": False},
        "FLIP": {"ENABLED": False},
        "AQE": {"ENABLED": False, "ALPHA": 3.0, "QE_TIME": 1, "QE_K": 5},
        "RERANK": {"ENABLED": False, "K1": 20, "K2": 6, "LAMBDA": 0.3, "VARIANT": "fastreid"},
        "PRECISE_BN": {"ENABLED": False, "DATASET": "Market1501", "NUM_ITER": 300},
    },
    "OUTPUT_DIR": "logs/",
    "CUDNN_BENCHMARK": False,
    "SEED": 0,
}

# Keys reidkit adds to fast-reid's set (fast-reid files never set them).
REIDKIT_KEYS = (
    "TEST.RERANK.VARIANT",  # fastreid | zhong
    "DATASETS.ROOT",  # folder that holds the datasets named in NAMES / TESTS
    "DATALOADER.STRICT",  # an unreadable image stops training instead of being skipped
    "SEED",  # batches, augmentation and initial weights
    "MODEL.BACKBONE.MIXSTYLE",  # feature-statistics mixing in training (EfficientNet-Lite)
    "INPUT.DOWNSCALE",  # low-resolution augmentation (see data/transforms.downscale)
    "INPUT.GRAYSCALE",  # greyscale augmentation
    "MODEL.HEADS.GEM_P",  # GeM exponent
    "MODEL.HEADS.TEST_FEAT",  # embed after (fast-reid) or before the BNNeck
    "MODEL.HEADS.TEST_POOL_LAYER",  # pooling at test time, when not the training one
)


def default_tree() -> dict[str, Any]:
    """A fresh, mutable copy of the default key tree."""
    import copy

    return copy.deepcopy(_DEFAULTS)
