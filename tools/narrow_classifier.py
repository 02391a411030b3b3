"""Keep only the classifier rows of the identities a new training set shares with the old one.

A model trained on a joined dataset (tools/join_datasets.py) can then go on training on one of its
parts with the classifier it learnt for that part, instead of a new random one. Identities are
matched by the number in their file names (join_datasets keeps the first dataset's numbers), and
the rows are put in the order `reid train` labels the new set. Used by the shipped recipe:
configs/CUHK03/lite0_curriculum.yml.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reidkit.checkpoint.io import CLASSIFIER_KEY, CheckpointError, atomic_save, load_checkpoint
from reidkit.config import get_cfg
from reidkit.data.datasets import MARKET_PATTERN, DatasetError
from reidkit.engine.launch import train_records


def labels_by_identity(root: Path) -> dict[int, int]:
    """{identity number in the file names: training label} of a Market-1501-layout root."""
    cfg = get_cfg()
    cfg.DATASETS.NAMES = ["Market1501"]
    cfg.DATASETS.ROOT = str(root)
    return {int(MARKET_PATTERN.match(Path(r.path).name).group(1)): r.pid for r in train_records(cfg)}


def narrow(checkpoint: Path, trained_on: Path, new_root: Path, out: Path) -> tuple[int, int]:
    """Write ``checkpoint``'s weights with the classifier cut to ``new_root``'s identities to ``out``;
    returns (classes before, classes after)."""
    ckpt = load_checkpoint(checkpoint)
    meta = dict(ckpt.get("meta") or {})
    key = meta.get("classifier_key", CLASSIFIER_KEY)
    if not key or key not in ckpt["model"]:
        raise SystemExit(f"{checkpoint}: no classifier to narrow")
    weight = ckpt["model"][key]
    old, new = labels_by_identity(trained_on), labels_by_identity(new_root)
    if len(old) != weight.shape[0]:
        raise SystemExit(f"{trained_on} has {len(old)} training identities but {checkpoint}'s classifier "
                         f"{weight.shape[0]} rows: give the root it was trained on")
    missing = sorted(set(new) - set(old))
    if missing:
        raise SystemExit(f"{new_root}: {len(missing)} identities are not in {trained_on} "
                         f"(e.g. {missing[:5]}): their rows would be made up")
    rows = [old[pid] for pid in sorted(new, key=new.get)]
    model = dict(ckpt["model"])
    model[key] = weight[rows].clone()
    meta["num_classes"] = len(rows)
    atomic_save({"model": model, "meta": meta}, out)
    return weight.shape[0], len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path, help="a model_*.pth written by `reid train`")
    ap.add_argument("--trained-on", type=Path, required=True, help="the DATASETS.ROOT it was trained on")
    ap.add_argument("--to", type=Path, required=True, help="the DATASETS.ROOT the next training reads")
    ap.add_argument("-o", "--out", type=Path, required=True, help="weights file to write (MODEL.WEIGHTS)")
    args = ap.parse_args()
    try:
        before, after = narrow(args.checkpoint, args.trained_on, args.to, args.out)
    except (CheckpointError, DatasetError) as e:
        raise SystemExit(str(e)) from None
    print(f"wrote {args.out}: classifier {before} -> {after} classes")


if __name__ == "__main__":
    sys.exit(main())
