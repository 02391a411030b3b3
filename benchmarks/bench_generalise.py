#!/usr/bin/env python
"""How well ReID models do on cameras they were and were not trained on: one table, a row a model.

Columns: CUHK03 test (the training cameras), the 96 Market-1501 crops shipped with reidkit (never
trained on), and a PETS09-S2L1 crop split (never trained on; cut from vtest.avi and its MOT
ground truth by ``reid data crops``: frames 1-200 gallery, 201-400 query). Rows: the colour
histogram floor, then each checkpoint given with ``--weights NAME=PATH`` (default: the shipped
model). Rank-1 and mAP in percent, the Market-1501 protocol, no flip, no re-ranking.

    python benchmarks/bench_generalise.py --cuhk03 ../shared/data/cuhk03-detected \
        --video /usr/share/doc/opencv-doc/examples/data/vtest.avi \
        --gt ../shared/data/pets09-s2l1-dev/gt/gt.txt --weights shipped=src/reidkit/weights/lite0_cuhk03.pth
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch


def evaluate_on(embedder, root: Path) -> dict[str, float]:
    from reidkit.data.datasets import build_dataset
    from reidkit.evaluation import evaluate
    from reidkit.inference.extract import extract_query_gallery

    ds = build_dataset("Market1501", root)
    m = evaluate(extract_query_gallery(embedder, ds, progress=False).arrays)
    return {"Rank-1": round(m["Rank-1"], 1), "mAP": round(m["mAP"], 1)}


def main() -> None:
    from reidkit.inference import Embedder
    from reidkit.modeling.color_histogram import ColorHistogramEmbedder
    from reidkit.pipeline.crop_split import cut_crop_split
    from reidkit.samples import MARKET1501_MINI

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cuhk03", type=Path, help="CUHK03 in Market-1501 layout (query + bounding_box_test)")
    p.add_argument("--video", type=Path, required=True, help="vtest.avi (PETS09-S2L1)")
    p.add_argument("--gt", type=Path, required=True, help="MOT ground truth of the video")
    p.add_argument("--query-from", type=int, default=201)
    p.add_argument("--end", type=int, default=400)
    p.add_argument("--weights", nargs="*", default=[], help="NAME=CHECKPOINT rows (default: the shipped model)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path, help="also write the table here")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        pets = Path(tmp) / "pets"
        counts = cut_crop_split(args.video, args.gt, pets, args.query_from, end=args.end)
        sets = {"CUHK03 test": args.cuhk03, "Market crops": MARKET1501_MINI, "PETS09 split": pets}
        sets = {k: v for k, v in sets.items() if v is not None}
        rows = {"colour histogram": ColorHistogramEmbedder()}
        from reidkit.weights import default_weights

        for item in args.weights or [f"shipped={default_weights()}"]:
            name, _, path = item.partition("=")
            rows[name] = Embedder.from_checkpoint(path, runtime="onnxruntime")
        table = {}
        for name, embedder in rows.items():
            table[name] = {s: evaluate_on(embedder, root) for s, root in sets.items()}
            cells = "  ".join(f"{s} {v['Rank-1']:5.1f} / {v['mAP']:5.1f}" for s, v in table[name].items())
            print(f"{name:28s} {cells}", flush=True)
    print(f"PETS09 split: {counts.gallery_images} gallery crops ({counts.gallery_ids} people), "
          f"{counts.query_images} query crops ({counts.query_ids} people)")
    if args.json:
        args.json.write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
