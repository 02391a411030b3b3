"""``reid adapt``: teach a ReID model the user's own cameras from unlabelled video.

1. Mine: track each video with the current model and keep confident tracklets (long enough, sure
   detections); cut crops from the frames where the person's box overlaps nobody else's.
2. Pseudo-identities: a tracklet is one person. Tracklets whose mean features are close merge
   (average linkage with cannot-links: tracklets of one camera that overlap in time are two people).
3. Fine-tune with the usual losses, each batch half pseudo-identities and half labelled identities
   (against forgetting), in resumable steps; the result is an ordinary reidkit checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from ..evaluation.distance import l2_normalize
from ..fileio import atomic_write_text, check_output_dir
from ..tracking.matching import iou_matrix
from ..tracking.tracker import Tracklet, TrackerConfig
from .sources import open_source

MANIFEST = "pseudo_labels.json"


@dataclass
class AdaptOptions:
    """What to learn from and how long; defaults measured on PETS09 (README, `reid adapt`)."""

    start: int = 1
    max_frames: Optional[int] = None
    detector: str = "yolox"
    min_frames: int = 16  # observed frames a tracklet needs to be kept
    min_score: float = 0.6  # mean detection score a tracklet needs
    crops_per_tracklet: int = 24
    min_height: int = 32  # pixels; smaller boxes hold too little of the person
    crowded_iou: float = 0.2  # a box overlapping another this much may show two people
    link_distance: float = 0.25  # tracker units (x distance_scale): pieces of one tracklet this alike stay one
    merge_distance: Optional[float] = None  # cosine: merge tracklets across time and cameras (off)
    iters: int = 100
    checkpoint_every: int = 20  # steps between resumable checkpoints (one sampler epoch)
    base_lr: float = 1.0e-4
    batch_size: int = 64
    pseudo_share: float = 0.5  # of each batch's identities, with labelled data
    losses: tuple[str, ...] = ("TripletLoss",)  # no new classifier to learn from scratch
    seed: int = 0

    def mining_key(self) -> dict:
        """The options the mined pseudo-labels depend on (a resumed run must have the same)."""
        keys = ("start", "max_frames", "detector", "min_frames", "min_score", "crops_per_tracklet", "min_height",
                "crowded_iou", "link_distance", "merge_distance")
        return {k: getattr(self, k) for k in keys}


@dataclass
class MinedTracklet:
    camera: str
    track_id: int
    first_frame: int
    last_frame: int
    frames: list[int]  # where crops are cut
    boxes: list[list[float]]
    mean_feature: Optional[list[float]] = None
    identity: int = -1
    piece: int = 0  # which piece of its tracklet (cut where the box met another)


@dataclass
class Mined:
    """What mining found: per video frames read and tracklets found, and the kept tracklets."""

    inputs: list[dict]
    kept: list[MinedTracklet] = field(default_factory=list)
    seconds: float = 0.0


def camera_names(videos: Sequence[Path]) -> list[str]:
    """One camera name per input (its file or folder name), made unique with a number."""
    names: list[str] = []
    for v in videos:
        base, n = Path(v).stem or "camera", 1
        name = base
        while name in names:
            n += 1
            name = f"{base}-{n}"
        names.append(name)
    return names


def select_crops(tracklets: list[Tracklet], opts: AdaptOptions) -> list[MinedTracklet]:
    """Confident pieces of tracklets and up to ``crops_per_tracklet`` frames spread over each.

    A tracker may swap two people where their boxes meet, so a tracklet is cut into pieces at the
    frames where its box overlaps another tracklet's (IoU >= ``crowded_iou``); those frames give no
    crops. A piece needs ``min_frames`` observed frames, a mean score of ``min_score`` and boxes of
    ``min_height`` px. Pieces of one tracklet are separate pseudo-identities until merging joins them."""
    by_frame: dict[int, list[tuple[int, np.ndarray]]] = {}
    for i, t in enumerate(tracklets):
        for f, b in zip(t.frames, t.boxes):
            by_frame.setdefault(int(f), []).append((i, b))
    kept = []
    for i, t in enumerate(tracklets):
        observed = np.ones(len(t.frames), bool) if t.observed is None else t.observed
        crowded = np.zeros(len(t.frames), bool)
        for k, (f, box) in enumerate(zip(t.frames, t.boxes)):
            others = np.array([b for j, b in by_frame[int(f)] if j != i])
            crowded[k] = len(others) > 0 and iou_matrix(box[None], others).max() >= opts.crowded_iou
        piece_of = np.cumsum(crowded)  # a new piece starts after every crowded frame
        pieces = 0
        for piece in np.unique(piece_of[~crowded]):
            rows = np.flatnonzero((piece_of == piece) & ~crowded & observed)
            if len(rows) < opts.min_frames or t.scores[rows].mean() < opts.min_score:
                continue
            usable = [k for k in rows if t.boxes[k][3] - t.boxes[k][1] >= opts.min_height]
            if len(usable) < 4:
                continue
            picks = np.unique(np.linspace(0, len(usable) - 1, opts.crops_per_tracklet).round().astype(int))
            pick = [usable[j] for j in picks]
            feats = None if t.features is None else t.features[rows]
            have = None if feats is None else np.isfinite(feats).all(1)
            mean = None
            if have is not None and have.any():
                m = feats[have].mean(0)
                mean = (m / max(np.linalg.norm(m), 1e-12)).tolist()
            kept.append(MinedTracklet(t.camera, int(t.track_id), int(t.frames[rows[0]]), int(t.frames[rows[-1]]),
                                      [int(t.frames[k]) for k in pick], [t.boxes[k].round(2).tolist() for k in pick],
                                      mean, piece=pieces))
            pieces += 1
    return kept


def assign_identities(kept: list[MinedTracklet], link_distance: float, merge_distance: Optional[float]) -> int:
    """Set each piece's ``identity``; returns how many identities there are.

    Consecutive pieces of one tracklet are one person when their mean features are within
    ``link_distance`` (a swap where boxes met shows as a jump in appearance). With ``merge_distance``,
    those people are then clustered across time and cameras (average linkage; two of one camera
    that overlap in time never merge)."""
    from ..mtmc import cannot_link_overlaps, constrained_agglomerative

    n = len(kept)
    group = np.arange(n)
    for i in range(1, n):
        a, b = kept[i - 1], kept[i]
        if (a.camera, a.track_id) == (b.camera, b.track_id) and a.mean_feature and b.mean_feature \
                and 1 - float(np.dot(a.mean_feature, b.mean_feature)) < link_distance:
            group[i] = group[i - 1]
    people = np.unique(group)
    labels = np.searchsorted(people, group)
    if merge_distance is not None and len(people) > 1 and all(t.mean_feature for t in kept):
        feats = l2_normalize(np.array([np.mean([kept[i].mean_feature for i in np.flatnonzero(group == g)], 0)
                                       for g in people]))
        first = [min(kept[i].first_frame for i in np.flatnonzero(group == g)) for g in people]
        last = [max(kept[i].last_frame for i in np.flatnonzero(group == g)) for g in people]
        cameras = [kept[int(np.flatnonzero(group == g)[0])].camera for g in people]
        clusters = constrained_agglomerative(np.clip(1 - feats @ feats.T, 0, 2),
                                             cannot_link_overlaps(cameras, first, last), merge_distance)
        labels = clusters[labels]
    for t, label in zip(kept, labels):
        t.identity = int(label)
    return int(labels.max()) + 1 if n else 0


def mine(videos: Sequence[Path], embedder, opts: AdaptOptions,
         progress: Optional[Callable[[str, int | None], Callable[[int], None]]] = None,
         distance_scale: float = 1.0) -> Mined:
    """Track every video and keep its confident tracklets (see :func:`select_crops`)."""
    from .components import make_detector
    from .track import REID_EVERY, run_tracking

    began = time.perf_counter()
    detect, det_name, _ = make_detector(opts.detector, 0.3)
    mined = Mined(inputs=[])
    for video, camera in zip(videos, camera_names(videos)):
        source = open_source(video, start=opts.start, limit=opts.max_frames)
        update = progress(f"track {camera}", source.frame_count) if progress else None
        config = TrackerConfig(distance_scale=distance_scale, appearance_refresh=REID_EVERY)
        result = run_tracking(source, detect, embedder, config, camera, output=None, video=False, progress=update)
        if result.problems:
            raise ValueError("; ".join(result.problems))
        kept = select_crops(result.tracklets, opts)
        mined.inputs.append({"video": str(video), "camera": camera, "frames": result.frames,
                             "tracklets": len(result.tracklets), "kept": len(kept)})
        if not result.tracklets:
            last = opts.start + result.frames - 1
            raise ValueError(f"{video}: no people found in frames {opts.start}-{last} (detector {det_name}): "
                             "nothing to learn from")
        mined.kept += kept
    mined.seconds = time.perf_counter() - began
    return mined


def cut_crops(mined: Mined, folder: Path) -> list[tuple[str, int, int]]:
    """Write every kept tracklet's crops under ``folder/<camera>/``; (path, identity, camera index)."""
    from PIL import Image

    records = []
    for cam_index, entry in enumerate(mined.inputs):
        wanted: dict[int, list[tuple[MinedTracklet, list[float]]]] = {}
        for t in mined.kept:
            if t.camera == entry["camera"]:
                for f, b in zip(t.frames, t.boxes):
                    wanted.setdefault(f, []).append((t, b))
        if not wanted:
            continue
        (folder / entry["camera"]).mkdir(parents=True)
        last = max(wanted)
        for number, frame in open_source(entry["video"], start=min(wanted), limit=last - min(wanted) + 1):
            h, w = frame.shape[:2]
            for t, (x1, y1, x2, y2) in wanted.get(number, ()):
                x1, y1 = max(0, int(round(x1))), max(0, int(round(y1)))
                x2, y2 = min(w, int(round(x2))), min(h, int(round(y2)))
                path = folder / entry["camera"] / f"{t.identity:05d}_{t.track_id:05d}_{number:06d}.jpg"
                Image.fromarray(np.ascontiguousarray(frame[y1:y2, x1:x2])).save(path, quality=95)
                records.append((str(path.relative_to(folder.parent)), t.identity, cam_index))
            if number >= last:
                break
    return records


def prepare(videos: Sequence[Path], out: Path, embedder, opts: AdaptOptions, min_identities: int,
            progress=None, extra: Optional[dict] = None, distance_scale: float = 1.0) -> dict:
    """Mine, assign identities and cut crops into ``out`` (which must be new or empty), or raise
    before anything is left there. Returns the manifest also written as ``out/pseudo_labels.json``."""
    out = check_output_dir(out, "--output")
    mined = mine(videos, embedder, opts, progress, distance_scale)
    identities = assign_identities(mined.kept, opts.link_distance * distance_scale, opts.merge_distance)
    if identities < min_identities:
        raise ValueError(f"too few tracklets to train: {len(mined.kept)} confident tracklets "
                         f"({identities} people) in {', '.join(str(v) for v in videos)}, at least {min_identities} "
                         "needed for a batch: give more frames (--max-frames), more videos or a smaller --batch-size")
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".adapt-", dir=out))
    try:
        records = cut_crops(mined, tmp / "crops")
        manifest = {**(extra or {}), "options": opts.mining_key(), "inputs": mined.inputs, "identities": identities,
                    "tracklets": [asdict(t) | {"mean_feature": None} for t in mined.kept],
                    "records": records, "mining_seconds": round(mined.seconds, 1)}
        os.replace(tmp / "crops", out / "crops")
        atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def training_config(init_cfg, num_classes: int, opts: AdaptOptions, iters_per_epoch: int):
    """The init model's config, set up for fine-tuning: ``opts.losses``, lower lr, short warm-up
    (with cross-entropy: backbone frozen while the new classifier settles), a checkpoint every
    epoch, no evaluation."""
    cfg = init_cfg.clone().freeze(False)
    cfg.MODEL.HEADS.NUM_CLASSES = num_classes
    cfg.MODEL.BACKBONE.PRETRAIN = False
    cfg.MODEL.WEIGHTS = ""
    cfg.MODEL.LOSSES.NAME = list(opts.losses)
    if "CrossEntropyLoss" in opts.losses:  # a new classifier settles before the backbone moves
        cfg.MODEL.FREEZE_LAYERS = ["backbone"]
        cfg.SOLVER.FREEZE_ITERS = min(20, opts.iters // 4)
    cfg.SOLVER.BASE_LR = opts.base_lr
    cfg.SOLVER.IMS_PER_BATCH = opts.batch_size
    cfg.SOLVER.MAX_EPOCH = math.ceil(opts.iters / iters_per_epoch)
    cfg.SOLVER.STEPS = []
    cfg.SOLVER.SCHED = "MultiStepLR"
    cfg.SOLVER.WARMUP_ITERS = max(cfg.SOLVER.FREEZE_ITERS, min(10, opts.iters // 4))
    cfg.SOLVER.CHECKPOINT_PERIOD = 1
    cfg.TEST.EVAL_PERIOD = 0
    cfg.SEED = opts.seed
    return cfg


def spread_ratio(before: Path, after: Path, paths: Sequence[str], pids: Sequence[int]) -> float:
    """How much wider ``after`` spreads distances than ``before``: the ratio of their median cosine
    distances between crops of different pseudo-identities. Fine-tuning sharpens features and
    stretches every distance (on PETS09 the median between two people went from 0.55 to 0.88, and
    between one person's neighbouring frames from 0.17 to 0.30); the tracker's thresholds are in
    the shipped model's units, so the checkpoint records this ratio for them."""
    from ..inference import Embedder

    ids = np.asarray(pids)
    other = ids[:, None] != ids[None, :]
    medians = []
    for weights in (before, after):
        feats, ok, _ = Embedder.from_checkpoint(weights, runtime="onnxruntime").embed_files(paths)
        keep = other[np.ix_(ok, ok)]
        medians.append(float(np.median((1 - feats @ feats.T)[keep])))
    return medians[1] / max(medians[0], 1e-6)


def adapt(videos: Sequence[Path], out: Path, init: Optional[Path] = None, labelled: Optional[Path] = None,
          labelled_dataset: str = "Market1501", opts: Optional[AdaptOptions] = None, resume: bool = False,
          progress: bool = True) -> dict:
    """Mine pseudo-identities from ``videos`` (unless a resumed run has them), fine-tune ``init``
    (default: the shipped model) on them mixed with ``labelled`` training data, write
    ``out/model_final.pth`` and ``out/report.json``; returns the report."""
    from tqdm import tqdm

    import torch

    from ..checkpoint import atomic_save, load_model_weights, model_from_checkpoint
    from ..data.datasets import ImageRecord, build_dataset
    from ..data.samplers import MixedIdentityBatchSampler
    from ..engine.launch import seed_everything
    from ..engine.trainer import Trainer
    from ..modeling import build_model
    from ..weights import default_weights
    from ..inference.resolve import distance_scale_of
    from .components import make_embedder

    began = time.perf_counter()
    opts = opts or AdaptOptions()
    out = check_output_dir(out, "--output")
    init = Path(init) if init is not None else default_weights()
    if not init.is_file():
        raise FileNotFoundError(f"--init {init}: no such checkpoint")
    if init.suffix.lower() == ".onnx":
        raise ValueError(f"--init {init}: an ONNX file cannot be trained; give the checkpoint (.pth) it came from")
    manifest_path = out / MANIFEST
    if out.exists() and not manifest_path.exists():
        for left in [*out.glob(".adapt-*"), *out.glob("crops")]:  # an interrupted mining: start it again
            shutil.rmtree(left)
    if out.exists() and any(out.iterdir()):
        if not manifest_path.exists():
            raise ValueError(f"--output {out} is not empty and holds no `reid adapt` run: give a new folder")
        if not resume:
            raise ValueError(f"--output {out} holds an earlier `reid adapt` run: continue it with --resume, "
                             "or give a new folder")
    init_model, init_cfg = model_from_checkpoint(init)
    del init_model
    init_scale = distance_scale_of(str(init))
    labelled_records: list = []
    if labelled is not None:
        labelled_records = build_dataset(labelled_dataset, labelled).train
        if not labelled_records:
            raise ValueError(f"--labelled {labelled}: no training images in it ({labelled_dataset} layout)")
    ids_per_batch = opts.batch_size // init_cfg.DATALOADER.NUM_INSTANCE
    share = opts.pseudo_share if labelled_records else 1.0
    need = max(2, round(ids_per_batch * share))

    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest["options"] != opts.mining_key() or manifest.get("init") != str(init) or \
                manifest.get("checkpoint_every", 20) != opts.checkpoint_every or \
                [e["video"] for e in manifest["inputs"]] != [str(v) for v in videos]:
            raise ValueError(f"--output {out} was started with other inputs, --init or options "
                             f"({manifest.get('init')}, {[e['video'] for e in manifest['inputs']]}): resume it with "
                             "the same ones, or give a new folder")
    else:
        embedder = make_embedder(str(init))
        bars: list = []

        def bar(desc: str, total):
            bars.append(tqdm(total=total, desc=desc, unit="frame", disable=not progress))
            return bars[-1].update
        try:
            manifest = prepare(videos, out, embedder, opts, need, bar,
                               extra={"init": str(init), "checkpoint_every": opts.checkpoint_every},
                               distance_scale=init_scale)
        finally:
            for b in bars:
                b.close()

    n_pseudo = manifest["identities"]
    pseudo = [ImageRecord(str(out / p), pid, cam) for p, pid, cam in manifest["records"]]
    records = pseudo + [ImageRecord(r.path, n_pseudo + r.pid, 1000 + r.camid) for r in labelled_records]
    pools = [1] * len(pseudo) + [0] * len(labelled_records)
    cfg = training_config(init_cfg, n_pseudo + len({r.pid for r in labelled_records}), opts, opts.checkpoint_every)
    seed_everything(cfg.SEED)  # the new classifier starts the same in every run
    model = build_model(cfg)
    load_model_weights(model, init)
    sampler = MixedIdentityBatchSampler([r.pid for r in records], [r.camid for r in records], pools,
                                        cfg.SOLVER.IMS_PER_BATCH, cfg.DATALOADER.NUM_INSTANCE, share,
                                        opts.checkpoint_every, cfg.SEED)
    atomic_write_text(out / "config.yaml", cfg.dump())
    trainer = Trainer(cfg, model, records, [], out, "cpu", progress=progress, sampler=sampler)
    if (out / "last.pth").exists():
        trainer.resume(out / "last.pth")
    trained = time.perf_counter()
    trainer.train()
    final = out / "model_final.pth"
    scale = init_scale * spread_ratio(init, final, [r.path for r in pseudo], [r.pid for r in pseudo])
    ckpt = torch.load(final, map_location="cpu", weights_only=False)
    ckpt["meta"]["distance_scale"] = round(scale, 4)
    atomic_save(ckpt, final)
    report = {"init": str(init), "inputs": manifest["inputs"],
              "frames": sum(e["frames"] for e in manifest["inputs"]),
              "tracklets": sum(e["tracklets"] for e in manifest["inputs"]),
              "confident_tracklets": len(manifest["tracklets"]), "pseudo_identities": n_pseudo,
              "pseudo_crops": len(pseudo), "distance_scale": round(scale, 4),
              "labelled_images": len(labelled_records),
              "labelled_identities": len({r.pid for r in labelled_records}),
              "iterations": cfg.SOLVER.MAX_EPOCH * opts.checkpoint_every, "mining_seconds": manifest["mining_seconds"],
              "training_seconds_this_run": round(time.perf_counter() - trained, 1),
              "seconds_this_run": round(time.perf_counter() - began, 1), "model": str(out / "model_final.pth")}
    atomic_write_text(out / "report.json", json.dumps(report, indent=1))
    return report
