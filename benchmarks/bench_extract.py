#!/usr/bin/env python
"""Feature extraction throughput (images/s) on real crops: reidkit torch and ONNX beside fast-reid.

Every case runs in a fresh process on the same image files and threads, model loading included
(the ONNX file is exported beforehand, outside the timing), and reports images/s, peak resident
memory, and how close its features are to the reference case of the same model:

- bagtricks_R50 (fast-reid's format, the checkpoint in tests/fixtures): fast-reid's own demo loop
  (``demo/predictor.py``: cv2 decode, cv2 bicubic resize, batch of 1) and its evaluation loader
  loop (``build_reid_test_loader``, PIL bicubic, batches of TEST.IMS_PER_BATCH; its CUDA-stream
  ``DataLoaderX`` replaced by a plain DataLoader, as on CPU it cannot run), against reidkit
  torch and ONNX on the matching preprocessing path;
- the Lite0 default model: reidkit torch and ONNX (fast-reid has no EfficientNet-Lite); and the
  same network with last stride 2 (``lite0s2``, half the compute) for comparison with
  plain Lite0 figures.

    python benchmarks/bench_extract.py --images ../shared/data/cuhk03-detected/bounding_box_train \
        --limit 2000 [--fastreid ~/fast-reid --fastreid-pythonpath DIR] [--models r50 lite0]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fastreid_side import import_fastreid, peak_rss_gb

REPO = Path(__file__).resolve().parents[1]
R50_WEIGHTS = REPO / "tests" / "fixtures" / "fastreid_model" / "bagtricks_R50.pth.xz"
R50_CONFIG = REPO / "tests" / "fixtures" / "fastreid_configs" / "Market1501" / "bagtricks_R50.yml"


def reidkit_case(case: str, paths: list[str], onnx_path: str, preprocess: str, batch: int) -> np.ndarray:
    from reidkit.config import load_config
    from reidkit.inference import Embedder

    if case == "onnx":
        emb = Embedder.from_onnx(onnx_path, preprocess=preprocess, batch_size=batch)
    elif case == "r50-torch":
        emb = Embedder.from_config(load_config(R50_CONFIG), R50_WEIGHTS, preprocess=preprocess, batch_size=batch)
    elif case == "lite0s2-torch":
        emb = Embedder.from_model(lite0_stride2()[0], (256, 128), preprocess=preprocess, batch_size=batch)
    else:
        emb = Embedder.default(preprocess=preprocess, batch_size=batch)
    feats, ok, failed = emb.embed_files(paths)
    if failed:
        raise SystemExit(f"{len(failed)} unreadable images, e.g. {failed[0][1]}")
    return feats


def lite0_stride2():
    """The default network with last stride 2 and ImageNet weights: plain Lite0 (0.50 GFLOP per
    256x128 crop, half the default model's 0.99, which keeps stride 1 in its last stage for ReID)."""
    from reidkit.checkpoint import model_from_checkpoint
    from reidkit.modeling import build_model
    from reidkit.weights import default_weights

    _, cfg = model_from_checkpoint(default_weights())
    cfg = cfg.clone().freeze(False)
    cfg.MODEL.BACKBONE.LAST_STRIDE = 2
    cfg.MODEL.BACKBONE.PRETRAIN = True
    return build_model(cfg).eval(), cfg.freeze()


def plain_onnx_export(model, path: Path) -> Path:
    """The probe's export: TorchScript exporter, opset 17, dynamic batch, nothing rewritten."""
    import torch

    torch.onnx.export(model, (torch.rand(2, 3, 256, 128),), str(path), input_names=["images"],
                      dynamic_axes={"images": {0: "batch"}}, opset_version=17, dynamo=False)
    return path


def model_only_probe(paths: list[str], batch: int, rounds: int = 5) -> None:
    """The issue's Lite0 probe repeated beside ours: model-only images/s on one batch of real
    crops, timm's ``tf_efficientnet_lite0`` (eager, channels-last; and its ONNX export in
    onnxruntime) against reidkit's plain Lite0 (``lite0s2``) and the default model, alternating
    in one process so that the machine's drift hits every case alike; the best round counts."""
    import timm
    import torch

    from reidkit.checkpoint import model_from_checkpoint
    from reidkit.export.onnx_model import export_onnx, real_batch
    from reidkit.inference.embedder import OnnxRunner, TorchRunner
    from reidkit.weights import default_weights

    images, _ = real_batch(paths[:batch], (256, 128))
    work = Path(tempfile.mkdtemp())
    timm_model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0).eval()
    timm_cl = copy.deepcopy(timm_model).to(memory_format=torch.channels_last)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().contiguous(memory_format=torch.channels_last)

    def timm_eager():
        with torch.inference_mode():
            timm_cl(x)

    cases = {"timm tf_efficientnet_lite0, torch channels-last": timm_eager,
             "timm tf_efficientnet_lite0, onnxruntime": OnnxRunner(plain_onnx_export(timm_model, work / "timm.onnx"))}
    for name, model in (("reidkit lite0s2", lite0_stride2()[0]), ("reidkit default", model_from_checkpoint(default_weights())[0])):
        runner = TorchRunner(model)
        runner.fold_norms((256, 128))  # as Embedder does
        cases[f"{name}, torch"] = runner
        cases[f"{name}, onnxruntime"] = OnnxRunner(export_onnx(model, (256, 128), work / f"{name[8:]}.onnx"))
    best = dict.fromkeys(cases, 0.0)
    for _ in range(rounds):
        for name, run_case in cases.items():
            run_case() if name.endswith("channels-last") else run_case(images)  # warm-up
            start = time.perf_counter()
            run_case() if name.endswith("channels-last") else run_case(images)
            best[name] = max(best[name], len(images) / (time.perf_counter() - start))
    print(f"\nModel only, batch of {len(images)} real crops at 256x128, best of {rounds} alternating rounds:")
    print("| network | images/s |\n|---|---|")
    for name, rate in best.items():
        print(f"| {name} | {rate:.1f} |", flush=True)


def fastreid_case(checkout: Path, path_kind: str, paths: list[str]) -> np.ndarray:
    import_fastreid(checkout)
    import lzma

    import torch
    import torch.nn.functional as F
    from fastreid.config import get_cfg

    weights = Path(tempfile.mkdtemp()) / "bagtricks_R50.pth"
    weights.write_bytes(lzma.open(R50_WEIGHTS).read())  # fast-reid cannot read .xz (about 1 s, timed)
    cfg = get_cfg()
    cfg.merge_from_file(str(checkout / "configs" / "Market1501" / "bagtricks_R50.yml"))
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.PRETRAIN", "False", "MODEL.WEIGHTS", str(weights)])
    feats = []
    if path_kind == "demo":
        import cv2
        from predictor import FeatureExtractionDemo

        demo = FeatureExtractionDemo(cfg, parallel=False)
        for p in paths:
            feats.append(F.normalize(demo.run_on_image(cv2.imread(p))).numpy())
    else:
        from fastreid.data.build import build_reid_test_loader
        from fastreid.data.common import CommDataset
        from fastreid.data.transforms import build_transforms
        from fastreid.engine import DefaultTrainer
        from fastreid.utils.checkpoint import Checkpointer

        model = DefaultTrainer.build_model(cfg)
        Checkpointer(model).load(cfg.MODEL.WEIGHTS)
        model.eval()
        test_set = CommDataset([(p, 0, 0) for p in paths], build_transforms(cfg, is_train=False), relabel=False)
        loader, _ = build_reid_test_loader(cfg, test_set=test_set, num_workers=2)
        with torch.no_grad():
            for batch in loader:
                feats.append(F.normalize(model(batch)).numpy())
    return np.concatenate(feats)


def worker(args: argparse.Namespace) -> None:
    paths = Path(args.list).read_text().splitlines()
    start = time.perf_counter()
    if args.worker.startswith("fastreid"):
        feats = fastreid_case(args.fastreid, args.worker.split("-")[1], paths)
    else:
        feats = reidkit_case(args.worker, paths, args.onnx, args.preprocess, args.batch)
    seconds = time.perf_counter() - start
    np.save(args.out, feats)
    print(json.dumps({"rate": len(paths) / seconds, "seconds": seconds, "peak_rss_gb": peak_rss_gb()}))


def run(args, name: str, out: Path, extra: list[str], pythonpath: str = "") -> dict:
    cmd = [sys.executable, __file__, "--worker", name, "--list", str(args.list), "--out", str(out), *extra]
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [pythonpath, env.get("PYTHONPATH", "")]))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=Path, help="Folder of crops (e.g. cuhk03-detected/bounding_box_train).")
    ap.add_argument("--limit", type=int, default=2000)
    ap.add_argument("--models", nargs="*", default=["r50", "lite0", "lite0s2"], choices=["r50", "lite0", "lite0s2"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--probe-only", action="store_true",
                    help="Only the model-only Lite0 comparison with timm's tf_efficientnet_lite0.")
    ap.add_argument("--fastreid", type=Path, help="A fast-reid checkout to measure beside reidkit (R50 only).")
    ap.add_argument("--fastreid-pythonpath", default="", help="Extra import path for fast-reid's dependencies.")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--list", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--onnx", help=argparse.SUPPRESS)
    ap.add_argument("--preprocess", default="loader", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    if args.images is None:
        ap.error("--images FOLDER is required")

    import torch

    from reidkit.checkpoint import model_from_checkpoint, model_from_config
    from reidkit.config import load_config
    from reidkit.export.onnx_model import export_onnx
    from reidkit.inference.files import expand_inputs
    from reidkit.weights import default_weights

    paths = [str(p) for p in expand_inputs([args.images])[:args.limit]]
    work = Path(tempfile.mkdtemp())
    args.list = work / "images.txt"
    args.list.write_text("\n".join(paths))
    if args.probe_only or "lite0s2" in args.models:
        model_only_probe(paths, args.batch)
        if args.probe_only:
            return
    print(f"{len(paths)} images from {args.images}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"batch {args.batch}; model loading included", flush=True)
    print("| model | path | implementation | images/s | vs fast-reid | peak RSS | min cosine to reference |")
    print("|---|---|---|---|---|---|---|", flush=True)
    for model_name in args.models:
        if model_name == "r50":
            model, cfg = model_from_config(load_config(R50_CONFIG), R50_WEIGHTS)
        elif model_name == "lite0s2":
            model, cfg = lite0_stride2()
        else:
            model, cfg = model_from_checkpoint(default_weights())
        onnx_path = export_onnx(model, tuple(cfg.INPUT.SIZE_TEST), work / f"{model_name}.onnx")
        del model
        for path_kind in ("demo", "loader") if model_name == "r50" else ("loader",):
            results = []
            if args.fastreid and model_name == "r50":
                out = work / f"fastreid-{path_kind}.npy"
                results.append(("fast-reid", run(args, f"fastreid-{path_kind}", out, ["--fastreid", str(args.fastreid)],
                                                 args.fastreid_pythonpath), out))
            for impl, case in (("reidkit torch", f"{model_name}-torch"), ("reidkit onnx", "onnx")):
                out = work / f"{model_name}-{case}-{path_kind}.npy"
                extra = ["--onnx", str(onnx_path), "--preprocess", path_kind, "--batch", str(args.batch)]
                results.append((impl, run(args, case, out, extra), out))
            reference = np.load(results[0][2])
            base = results[0][1]["rate"] if results[0][0] == "fast-reid" else None
            for impl, res, out in results:
                cos = float((np.load(out) * reference).sum(1).min())
                ratio = f"{res['rate'] / base:.2f}x" if base else "-"
                print(f"| {model_name} | {path_kind} | {impl} | {res['rate']:.1f} | {ratio} | "
                      f"{res['peak_rss_gb']:.2f} GB | {cos:.6f} |", flush=True)


if __name__ == "__main__":
    main()
