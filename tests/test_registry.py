"""The one registry idea: lookups, declared facts and errors; every extension point is one; the
model card round trip; the identity memory against a plain reference."""

from __future__ import annotations

import numpy as np
import pytest

from reidkit.model_card import ModelCard
from reidkit.extension_points import all_registries, markdown_table
from reidkit.registry import Registry


def test_registry_lookup_aliases_declared_facts_and_errors():
    reg: Registry = Registry("widget", "make() -> a widget", where="--widget", case_sensitive=False)

    @reg.register("Round", "circle", corners=0)
    def round_widget():
        return "o"

    reg.add("Square", lambda: "[]", corners=4)
    assert list(reg) == ["Round", "Square"] and len(reg) == 2
    assert reg.get("CIRCLE")() == "o" and reg.entry("circle").name == "Round"
    assert reg.info("square")["corners"] == 4 and "round" in reg and "triangle" not in reg
    with pytest.raises(ValueError, match=r"unknown widget 'triangle' \(--widget\): expected one of Round, Square"):
        reg.get("triangle")
    with pytest.raises(KeyError, match="'ROUND' is registered twice"):
        reg.add("ROUND", lambda: None)
    exact: Registry = Registry("gadget", "anything")
    exact.add("A", 1)
    assert "a" not in exact  # case-sensitive unless told otherwise


def test_every_extension_point_is_a_populated_registry_with_a_contract():
    regs = {r.kind: r for r in all_registries()}
    assert set(regs) == {"backbone", "head", "meta-architecture", "loss", "dataset", "detector", "ReID model kind",
                         "tracker", "index engine"}
    for reg in regs.values():
        assert len(reg) >= 1 and len(reg.contract) > 20, reg
    assert {"CrossEntropyLoss", "TripletLoss", "CircleLoss", "Cosface"} == set(regs["loss"])
    assert {"numpy", "faiss", "milvus"} == set(regs["index engine"])
    assert regs["detector"].info("mot")["needs_frames"] is False and regs["detector"].info("yolox")["sized"]
    assert regs["tracker"].get("reidkit").uses_appearance
    table = markdown_table()
    assert table.count("\n") == len(regs) + 1 and "`build_efficientnet_lite_backbone`" in table


def test_losses_come_out_under_their_declared_names_and_equal_the_functions():
    import torch

    from reidkit.config import get_cfg
    from reidkit.modeling.losses import cross_entropy, triplet
    from reidkit.modeling.registry import LOSSES

    cfg = get_cfg().MODEL.LOSSES
    torch.manual_seed(0)
    outputs = {"cls_outputs": torch.randn(8, 5), "features": torch.randn(8, 16)}
    targets = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    ce = LOSSES.get("CrossEntropyLoss")(outputs, targets, cfg)
    assert LOSSES.info("CrossEntropyLoss")["output"] == "loss_cls"
    torch.testing.assert_close(ce, cross_entropy(outputs["cls_outputs"], targets, cfg.CE.EPSILON) * cfg.CE.SCALE)
    tri = LOSSES.get("TripletLoss")(outputs, targets, cfg)
    torch.testing.assert_close(tri, triplet(outputs["features"], targets, cfg.TRI.MARGIN, cfg.TRI.NORM_FEAT,
                                            cfg.TRI.HARD_MINING) * cfg.TRI.SCALE)
    from reidkit.modeling.baseline import Baseline

    bad = get_cfg()
    bad.MODEL.LOSSES.NAME = ("CrossEntropyLoss", "Focal")
    with pytest.raises(ValueError, match=r"unknown loss 'Focal' \(MODEL.LOSSES.NAME\)"):
        Baseline(torch.nn.Identity(), torch.nn.Identity(), [0, 0, 0], [1, 1, 1], bad.MODEL.LOSSES)


def test_model_card_round_trips_and_names_what_is_wrong():
    card = ModelCard((256, 128), 1280, (127.0,) * 3, (128.0,) * 3, flip=True, classifier_key=None,
                     distance_scale=1.3, license="Apache-2.0", training="test", train_datasets=("CUHK03",))
    assert ModelCard.from_json(card.to_json(), "x.onnx") == card
    meta = card.to_meta()
    assert meta["embedding_dim"] == 1280 and meta["input_size"] == [256, 128]
    assert ModelCard.from_meta(meta, "x.pth") == card
    with pytest.raises(ValueError, match="x.pth: its model card lacks input_size"):
        ModelCard.from_meta({"embedding_dim": 3}, "x.pth")
    with pytest.raises(ValueError, match="x.onnx: model card fields colour are unknown"):
        ModelCard.from_json('{"input_size": [1, 1], "dim": 1, "colour": "red"}', "x.onnx")
    with pytest.raises(ValueError, match="preprocess 'nearest'"):
        ModelCard((8, 8), 4, preprocess="nearest")


def test_the_shipped_model_carries_its_card_into_embedders_and_onnx(tmp_path):
    from reidkit.checkpoint import checkpoint_card, load_checkpoint
    from reidkit.inference import Embedder
    from reidkit.weights import default_weights

    card = checkpoint_card(load_checkpoint(default_weights()), "shipped")
    assert card.input_size == (256, 128) and card.dim == 1280 and card.classifier_key is None
    assert card.pixel_mean == (127.0, 127.0, 127.0) and "CUHK03" in card.training
    torch_embedder = Embedder.default()
    assert torch_embedder.card == card
    onnx_embedder = Embedder.default(runtime="onnxruntime")  # exported in memory with the card in its metadata
    assert onnx_embedder.runtime == "onnxruntime" and onnx_embedder.card == card


def reference_recall(entries, feature, frame, window, max_distance, scale, busy):
    """Plain loop: the nearest remembered id within the window, not busy, within the distance."""
    best, best_d = None, None
    for identity, last, feat in entries:
        if frame - last > window or identity in busy:
            continue
        d = (1.0 - float(np.dot(feat, feature))) / scale
        if best_d is None or d < best_d:
            best, best_d = identity, d
    return best if best_d is not None and best_d <= max_distance else None


@pytest.mark.parametrize("seed", range(5))
def test_identity_memory_recalls_like_a_plain_loop(seed):
    from reidkit.tracking.reentry import IdentityMemory

    rng = np.random.default_rng(seed)
    base = rng.standard_normal((6, 8))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    memory = IdentityMemory(window=50, max_distance=0.3, distance_scale=1.5)
    entries = []
    for identity in range(6):
        last = int(rng.integers(0, 100))
        memory.remember(identity, last, base[identity])
        entries.append((identity, last, base[identity]))
    recalled = 0
    for _ in range(20):
        probe = base[rng.integers(0, 6)] + rng.normal(0, 0.3, 8)
        probe /= np.linalg.norm(probe)
        frame, busy = int(rng.integers(60, 140)), {int(rng.integers(0, 6))}
        want = reference_recall(entries, probe, frame, 50, 0.3, 1.5, busy)
        assert memory.recall(probe, frame, busy) == want
        entries = [e for e in entries if frame - e[1] <= 50 and e[0] != want]  # expired and recalled are gone
        recalled += want is not None
    assert memory.recalled == recalled
