"""Turn a training checkpoint into the file shipped as reidkit's default model.

Drops the classifier (users embed, they do not classify CUHK03 identities), stores the weights in
fp16 (half the size) and says in the metadata how the model was trained. Prints how far the fp16
features are from the fp32 ones on the real crops in tests/fixtures, so a bad cast is seen.

    python tools/ship_weights.py logs/cuhk03/lite0_curriculum/model_final.pth \
        --training "configs/CUHK03/lite0_curriculum.yml: ..." --distance-scale 0.75 -o src/reidkit/weights/lite0_cuhk03.pth \
        --opts MODEL.HEADS.TEST_FEAT before MODEL.HEADS.TEST_POOL_LAYER GeneralizedMeanPooling MODEL.HEADS.GEM_P 2.0

``--opts`` changes the config stored with the weights; only test-time keys make sense there (the
weights stay as trained).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import yaml
from PIL import Image

from reidkit.checkpoint import atomic_save, checkpoint_card, load_checkpoint, model_from_checkpoint, model_from_config
from reidkit.data.transforms import build_transform

FIXTURE_IMAGES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "fastreid_model" / "images"


def _features(path: Path, images: list[Path], opts: list[str] = ()) -> torch.Tensor:
    model, cfg = model_from_checkpoint(path)
    if opts:
        model, cfg = model_from_config(cfg.clone().freeze(False).merge_from_list(opts), path)
    transform = build_transform(cfg, is_train=False)
    batch = torch.stack([transform(Image.open(p), torch.Generator()) for p in images])
    with torch.no_grad():
        return torch.nn.functional.normalize(model.float()(batch), dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a model_*.pth written by `reid train`")
    parser.add_argument("--training", required=True, help="one line saying how the weights were trained")
    parser.add_argument("--distance-scale", type=float, default=None,
                        help="the model card's distance_scale: how much wider this model spreads cosine "
                             "distances than the tracker's thresholds assume (see TrackerConfig)")
    parser.add_argument("--opts", nargs="*", default=[],
                        help="KEY VALUE pairs changing the stored config (test-time keys such as MODEL.HEADS.TEST_FEAT)")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()

    ckpt = load_checkpoint(args.checkpoint)
    card = checkpoint_card(ckpt, str(args.checkpoint))
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in ckpt["model"].items() if k != card.classifier_key}
    meta = {**ckpt.get("meta", {}), "classifier_key": None, "license": "Apache-2.0",
            "training": args.training + "; weights stored in fp16, classifier dropped"}
    if args.opts:
        from reidkit.config import get_cfg

        cfg = get_cfg()
        cfg.merge_from_dict(yaml.safe_load(meta["config"]), source=f"{args.checkpoint} metadata")
        cfg.merge_from_list(args.opts)
        meta["config"] = cfg.dump()
    if args.distance_scale is not None:
        if not args.distance_scale > 0:
            parser.error(f"--distance-scale must be > 0, got {args.distance_scale}")
        meta["distance_scale"] = args.distance_scale
    atomic_save({"model": state, "meta": meta}, args.output)

    size_mb = args.output.stat().st_size / 1e6
    images = sorted(FIXTURE_IMAGES.glob("*.jpg"))
    cosine = (_features(args.checkpoint, images, args.opts) * _features(args.output, images)).sum(dim=1)
    print(f"wrote {args.output} ({size_mb:.1f} MB); fp16 vs fp32 features: lowest cosine {cosine.min():.5f} "
          f"on {len(images)} crops")


if __name__ == "__main__":
    main()
