"""Detectors: the SSDLite text graph, and its boxes against PETS09 ground truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import FIXTURES
from PIL import Image

from reidkit.detection import Detections, SSDLiteDetector
from reidkit.detection.ssd_text_graph import SSDSpec, anchor_sizes

PETS = FIXTURES / "pets09"


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def test_anchor_sizes_follow_tf_ssd_anchor_generator():
    sizes = anchor_sizes(SSDSpec())
    assert len(sizes) == 6
    widths, heights = sizes[0]  # lowest layer: 0.1 box, and scale 0.2 at aspect ratios 2 and 1/2
    np.testing.assert_allclose(widths, [30.0, 0.2 * math.sqrt(2) * 300, 0.2 / math.sqrt(2) * 300])
    np.testing.assert_allclose(heights, [30.0, 0.2 / math.sqrt(2) * 300, 0.2 * math.sqrt(2) * 300])
    widths, heights = sizes[1]  # scale 0.35; aspect ratios 1, 2, 1/2, 3, 1/3; then sqrt(0.35 * 0.5)
    assert len(widths) == 6
    np.testing.assert_allclose(widths[0], 105.0)
    np.testing.assert_allclose(widths[3] * heights[3], 105.0 ** 2)  # same area at ratio 3
    np.testing.assert_allclose(widths[3] / heights[3], 3.0)
    np.testing.assert_allclose(widths[5], math.sqrt(0.35 * 0.5) * 300)
    np.testing.assert_allclose(sizes[5][0][5], math.sqrt(0.95 * 1.0) * 300)  # the last scale meets 1.0


@pytest.fixture(scope="module")
def detector():
    pytest.importorskip("cv2")
    return SSDLiteDetector(score_threshold=0.3)


def test_ssdlite_finds_the_people_of_pets09(detector):
    gt = np.loadtxt(PETS / "gt.csv", delimiter=",", skiprows=1)
    found = matched = total = detections = 0
    for frame_no in (1, 120, 240):
        frame = np.asarray(Image.open(PETS / f"{frame_no:06d}.jpg").convert("RGB"))
        det = detector.detect(frame)
        assert det.xyxy.dtype == np.float32 and (det.score >= 0.3).all() and (det.cls == 0).all()
        assert (det.xyxy[:, :2] >= 0).all() and (det.xyxy[:, 2] <= 768).all() and (det.xyxy[:, 3] <= 576).all()
        truth = gt[gt[:, 0] == frame_no][:, 2:6].copy()
        truth[:, 2:] += truth[:, :2]
        overlap = iou(truth, det.xyxy)
        found += int((overlap.max(1) >= 0.5).sum())
        matched += int((overlap.max(0) >= 0.5).sum())
        total += len(truth)
        detections += len(det)
    # Over frames 1-400 this detector has recall 0.64 and precision 0.77 at IoU 0.5.
    assert found / total >= 0.5 and matched / detections >= 0.6


def test_text_graph_keeps_only_the_network_and_ssd_head(detector):
    from reidkit.detection.ssd_text_graph import ssd_text_graph

    text = ssd_text_graph(detector.graph)
    assert text.count('op: "PriorBox"') == 6 and text.count('op: "DetectionOutput"') == 1
    assert "Preprocessor/" not in text and "Postprocessor/" not in text
    assert text.count('input: "image_tensor"') == 1 + 6  # the first convolution and each PriorBox


def test_detector_errors(tmp_path, detector):
    with pytest.raises(ValueError, match="RGB uint8 frame"):
        detector.detect(np.zeros((10, 10), np.uint8))
    with pytest.raises(FileNotFoundError, match="frozen graph not found"):
        SSDLiteDetector(tmp_path / "none.pb")
    (tmp_path / "bad.pb").write_bytes(b"not a graph")
    with pytest.raises(ValueError, match="bad.pb"):
        SSDLiteDetector(tmp_path / "bad.pb")
    assert len(Detections.empty()) == 0


@pytest.fixture(scope="module")
def opencv_detector():
    pytest.importorskip("cv2")
    return SSDLiteDetector(score_threshold=0.3, backend="opencv")


def test_onnxruntime_conversion_gives_opencvs_boxes(detector, opencv_detector):
    """The network converted without TensorFlow, with numpy anchors/decoding/NMS, against OpenCV
    DNN running the frozen graph with its own SSD layers."""
    assert detector.backend == "onnxruntime"
    boxes = 0
    for frame_no in (1, 120, 240):
        frame = np.asarray(Image.open(PETS / f"{frame_no:06d}.jpg").convert("RGB"))
        ours, reference = detector.detect(frame), opencv_detector.detect(frame)
        assert len(ours) == len(reference)
        boxes += len(ours)
        np.testing.assert_allclose(ours.xyxy, reference.xyxy, atol=0.05)  # pixels
        np.testing.assert_allclose(ours.score, reference.score, atol=1e-4)
    assert boxes >= 10


def test_graph_reader_agrees_with_opencvs_text_dump(detector, tmp_path):
    import cv2

    from reidkit.detection.ssd_text_graph import _parse_nodes
    from reidkit.detection.tf_graph import read_graph_def

    graph = read_graph_def(detector.graph)
    cv2.dnn.writeTextGraph(str(detector.graph), str(tmp_path / "dump.pbtxt"))
    dumped = _parse_nodes((tmp_path / "dump.pbtxt").read_text())
    assert sorted(n.name for n in dumped) == sorted(graph)
    assert all(graph[n.name].op == n.op and graph[n.name].inputs == n.inputs for n in dumped)
    conv = graph["FeatureExtractor/MobilenetV2/Conv/Conv2D"]
    assert conv.attrs["strides"] == [1, 2, 2, 1] and conv.attrs["padding"] == "SAME"
    assert graph["FeatureExtractor/MobilenetV2/Conv/weights"].attrs["value"].shape == (3, 3, 3, 32)


def test_graph_reader_errors(tmp_path, detector):
    from reidkit.detection.tf_graph import GraphDefError, read_graph_def

    whole = detector.graph.read_bytes()
    (tmp_path / "cut.pb").write_bytes(whole[: len(whole) // 3])
    with pytest.raises(GraphDefError, match="cut.pb.*truncated"):
        read_graph_def(tmp_path / "cut.pb")
    with pytest.raises(FileNotFoundError, match="missing.pb"):
        read_graph_def(tmp_path / "missing.pb")


def test_tf_same_padding_puts_the_odd_pixel_after():
    from reidkit.detection.ssd_onnx import _same_pads

    assert _same_pads(300, 3, 2, 1) == (150, 0, 1)
    assert _same_pads(19, 3, 2, 1) == (10, 1, 1)
    assert _same_pads(2, 3, 2, 1) == (1, 0, 1)
    assert _same_pads(75, 3, 1, 1) == (75, 1, 1)
    assert _same_pads(10, 1, 2, 1) == (5, 0, 0)


def test_nms_matches_torchvision():
    import torch
    from torchvision.ops import nms as tv_nms

    from reidkit.detection.base import nms

    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 1, (300, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + rng.uniform(0.05, 0.3, (300, 2)).astype(np.float32)], axis=1)
    scores = rng.uniform(0, 1, 300).astype(np.float32)
    expected = tv_nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5).numpy()
    np.testing.assert_array_equal(nms(boxes, scores, 0.5, 1000), expected)
    np.testing.assert_array_equal(nms(boxes, scores, 0.5, 7), expected[:7])
