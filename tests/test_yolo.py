"""YOLO-family ONNX detectors: output layouts, letterbox geometry back to frame pixels, NMS,
person class only, and the errors for missing files/packages. The ONNX models here are tiny graphs
with a known output, so every expected box below is worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from reidkit.detection.yolo import YoloOnnxDetector, letterbox, parse_yolo_output


def constant_model(path, output: np.ndarray, size: int = 640, any_size: bool = False):
    """An ONNX model with an image input whose output is ``output`` whatever the image; it runs
    only at ``size`` x ``size`` (as exports with baked-in grids do) unless ``any_size``."""
    import onnx
    from onnx import helper, numpy_helper

    reduce = [helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0)] if any_size else [
        helper.make_node("Reshape", ["images", "flat"], ["pixels"]),
        helper.make_node("ReduceMean", ["pixels"], ["mean"], keepdims=0)]
    nodes = reduce + [helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
                      helper.make_node("Add", ["table", "nothing"], ["output0"])]
    inits = [numpy_helper.from_array(output.astype(np.float32), "table"),
             numpy_helper.from_array(np.array(0, np.float32), "zero"),
             numpy_helper.from_array(np.array([3 * size * size], np.int64), "flat")]
    graph = helper.make_graph(nodes, "yolo", [helper.make_tensor_value_info("images", onnx.TensorProto.FLOAT,
                                                                            [1, 3, size, size])],
                              [helper.make_tensor_value_info("output0", onnx.TensorProto.FLOAT, list(output.shape))],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, str(path))
    return path


FRAME = np.zeros((576, 768, 3), np.uint8)  # letterboxed into 640x640: scale 5/6, 80 px bars top and bottom


def test_ultralytics_layout_maps_boxes_back_to_the_frame(tmp_path):
    n, classes = 50, 3
    out = np.zeros((1, 4 + classes, n), np.float32)
    out[0, :4, 0], out[0, 4, 0] = [320, 320, 100, 200], 0.9  # a person
    out[0, :4, 1], out[0, 4, 1] = [322, 318, 100, 200], 0.8  # the same person again: NMS drops it
    out[0, :4, 2], out[0, 4, 2] = [100, 300, 40, 60], 0.25  # under the score threshold
    out[0, :4, 3], out[0, 6, 3] = [500, 300, 50, 100], 0.95  # another class
    out[0, :4, 4], out[0, 4, 4] = [600, 150, 100, 100], 0.5  # a person partly in the top bar: clipped
    det = YoloOnnxDetector(constant_model(tmp_path / "v8.onnx", out), score_threshold=0.3)
    found = det.detect(FRAME)
    assert len(found) == 2 and (found.cls == 0).all()
    np.testing.assert_allclose(found.score, [0.9, 0.5], rtol=1e-6)
    # (270, 220, 370, 420) in the input, minus the 80 px top bar, times 6/5.
    np.testing.assert_allclose(found.xyxy[0], [324, 168, 444, 408], atol=1e-3)
    # (550, 100, 650, 200) -> (660, 24, 780, 144), clipped to the 768 px wide frame.
    np.testing.assert_allclose(found.xyxy[1], [660, 24, 768, 144], atol=1e-3)


def test_models_that_take_any_size_get_the_frame_padded_to_a_multiple_of_32_only(tmp_path):
    n, classes = 50, 3
    out = np.zeros((1, 4 + classes, n), np.float32)
    out[0, :4, 0], out[0, 4, 0] = [320, 320, 100, 200], 0.9
    det = YoloOnnxDetector(constant_model(tmp_path / "any.onnx", out, any_size=True), score_threshold=0.3)
    assert det.fits_frame and det.network_size((576, 768)) == (480, 640)
    assert det.network_size((1080, 1920)) == (384, 640)  # 360 rows, padded up to 384
    assert det.network_size((768, 576)) == (640, 480)
    x, scale, pad = det._input(FRAME)
    assert x.shape == (1, 3, 480, 640) and pad == (0, 0)
    # (270, 220, 370, 420) in the input, no bar, times 6/5
    np.testing.assert_allclose(det.detect(FRAME).xyxy[0], [324, 264, 444, 504], atol=1e-3)
    baked = YoloOnnxDetector(constant_model(tmp_path / "baked.onnx", out), score_threshold=0.3)
    assert not baked.fits_frame and baked.network_size((576, 768)) == (640, 640)


def test_yolox_layout_uses_objectness_times_class_and_top_left_padding(tmp_path):
    n, classes = 40, 2
    out = np.zeros((1, n, 5 + classes), np.float32)
    out[0, 0] = [320, 320, 100, 200, 0.9, 0.5, 0.1]  # person: 0.9 x 0.5 = 0.45
    out[0, 1] = [100, 100, 50, 50, 0.2, 0.9, 0.0]  # person, but 0.2 x 0.9 = 0.18 < 0.3
    out[0, 2] = [400, 400, 50, 50, 0.9, 0.1, 0.9]  # the other class
    det = YoloOnnxDetector(constant_model(tmp_path / "yolox.onnx", out), score_threshold=0.3, style="yolox")
    found = det.detect(FRAME)
    assert len(found) == 1
    np.testing.assert_allclose(found.score, [0.45], rtol=1e-6)
    np.testing.assert_allclose(found.xyxy[0], [324, 264, 444, 504], atol=1e-3)  # no bar to subtract


def test_letterbox_preprocessing_per_style(tmp_path):
    frame = np.zeros((576, 768, 3), np.uint8)
    frame[:, :, 0] = 200  # red
    image, scale, pad = letterbox(frame, (640, 640), centred=True)
    assert scale == pytest.approx(640 / 768) and pad == (0, 80)
    assert (image[:80] == 114).all() and (image[560:] == 114).all() and (image[80:560, :, 0] == 200).all()
    out = np.zeros((1, 5, 30), np.float32)
    ultra = YoloOnnxDetector(constant_model(tmp_path / "a.onnx", out))
    x, _, _ = ultra._input(frame)
    assert x.shape == (1, 3, 640, 640) and x[0, 0, 320, 320] == pytest.approx(200 / 255) and x[0, 2, 320, 320] == 0
    yolox = YoloOnnxDetector(constant_model(tmp_path / "b.onnx", np.zeros((1, 30, 6), np.float32)), style="yolox")
    x, _, pad = yolox._input(frame)
    assert pad == (0, 0) and x[0, 2, 10, 10] == 200 and x[0, 0, 10, 10] == 0  # BGR, 0-255
    assert x[0, 0, 600, 10] == 114  # the bar is at the bottom


def test_parse_yolo_output_rejects_other_shapes():
    with pytest.raises(ValueError, match="unrecognised YOLO output shape"):
        parse_yolo_output(np.zeros((1, 3, 4)))
    with pytest.raises(ValueError, match="batch of one"):
        parse_yolo_output(np.zeros((2, 84, 100)))


def test_missing_files_and_packages_are_clear(tmp_path):
    from reidkit.pipeline.components import make_detector

    with pytest.raises(FileNotFoundError, match="never downloads"):
        make_detector(f"onnx:{tmp_path / 'yolov8n.onnx'}", 0.3)
    with pytest.raises(FileNotFoundError, match="never downloads"):
        make_detector(f"yolo:{tmp_path / 'yolov8n.pt'}", 0.3)
    (tmp_path / "yolov8n.pt").write_bytes(b"weights")
    try:
        import ultralytics  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="optional `ultralytics` package"):
            make_detector(f"yolo:{tmp_path / 'yolov8n.pt'}", 0.3)
    with pytest.raises(ValueError, match=r"expected one of yolox\[:MODEL.onnx\], ssdlite, hog, onnx:MODEL.onnx"):
        make_detector("yolo", 0.3)
    with pytest.raises(ValueError, match=r"only --detector mot:DET.txt runs without one"):
        make_detector("ssdlite", 0.3, have_frames=False)
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    with pytest.raises(ValueError, match="bad.onnx: onnxruntime cannot load it"):
        make_detector(f"onnx:{tmp_path / 'bad.onnx'}", 0.3)


def raw_yolox_rows(size: int = 64, classes: int = 2) -> np.ndarray:
    """Undecoded YOLOX output for a ``size`` x ``size`` input: one row per cell of the stride 8,
    16 and 32 grids (8x8 + 4x4 + 2x2 = 84 rows at 64), two people set by hand."""
    cells = sum((size // s) ** 2 for s in (8, 16, 32))
    out = np.zeros((1, cells, 5 + classes), np.float32)
    out[0, :, :2] = 0.5  # every cell predicts its own centre, as a trained head roughly does
    # stride 8, cell (x 3, y 2), row 2 * 8 + 3: centre (3.5, 2.5) * 8 = (28, 20), size (2, 4) * 8
    out[0, 19] = [0.5, 0.5, np.log(2), np.log(4), 0.9, 0.8, 0.1]
    # stride 16, cell (x 2, y 1), row 64 + 1 * 4 + 2: centre (2, 1) * 16 = (32, 16), size 16 x 16
    out[0, 70] = [0.0, 0.0, 0.0, 0.0, 0.9, 0.9, 0.0]
    # stride 32, cell (1, 1), row 80 + 3: its best class is not a person
    out[0, 83] = [0.5, 0.5, 0.0, 0.0, 0.9, 0.4, 0.6]
    return out


def test_raw_yolox_grid_outputs_are_decoded_by_stride_and_cell(tmp_path):
    model = constant_model(tmp_path / "raw.onnx", raw_yolox_rows(), size=64)
    found = YoloOnnxDetector(model, score_threshold=0.3, style="yolox").detect(np.zeros((64, 64, 3), np.uint8))
    assert len(found) == 2
    np.testing.assert_allclose(found.score, [0.81, 0.72], rtol=1e-5)
    np.testing.assert_allclose(found.xyxy, [[24, 8, 40, 24], [20, 4, 36, 36]], atol=1e-3)
    # the same rows already decoded (centres and sizes in pixels): read as they are
    from reidkit.detection.yolo import decode_yolox, is_raw_yolox

    rows = raw_yolox_rows()[0]
    decoded = decode_yolox(rows, (64, 64))
    assert is_raw_yolox(rows, (64, 64)) and not is_raw_yolox(decoded, (64, 64))
    again = YoloOnnxDetector(constant_model(tmp_path / "dec.onnx", decoded[None], size=64), style="yolox")
    np.testing.assert_allclose(again.detect(np.zeros((64, 64, 3), np.uint8)).xyxy, found.xyxy, atol=1e-3)


def test_the_bundled_yolox_nano_finds_the_people_of_pets09_at_two_input_sizes():
    """The shipped YOLOX-Nano (raw grid outputs, fixed 416x416 input made dynamic for 512x384)."""
    from conftest import FIXTURES
    from PIL import Image

    from reidkit.detection.yolo import bundled_yolox
    from reidkit.tracking.matching import iou_matrix

    gt = np.loadtxt(FIXTURES / "pets09" / "gt.csv", delimiter=",", skiprows=1)
    for size in (None, (384, 512)):
        det = YoloOnnxDetector(bundled_yolox(), score_threshold=0.3, style="yolox", input_size=size)
        found = total = 0
        for frame_no in (1, 120, 240):
            frame = np.asarray(Image.open(FIXTURES / "pets09" / f"{frame_no:06d}.jpg").convert("RGB"))
            boxes = det.detect(frame).xyxy
            truth = gt[gt[:, 0] == frame_no][:, 2:6].copy()
            truth[:, 2:] += truth[:, :2]
            found += int((iou_matrix(truth, boxes).max(1) >= 0.5).sum())
            total += len(truth)
        # Over frames 1-400: recall 0.92 (416x416) and 0.92 (512x384) at score 0.3; SSDLite 0.64.
        assert found / total >= 0.8, (size, found, total)


def test_detector_input_sizes_and_layouts_are_checked(tmp_path):
    from reidkit.detection.yolo import bundled_yolox, parse_size

    assert parse_size("512x384") == (512, 384)
    for bad in ("500x384", "512", "0x0", "axb"):
        with pytest.raises(ValueError, match=rf"--det-size {bad!r}|--det-size \d+x\d+: width and height"):
            parse_size(bad)
    with pytest.raises(ValueError, match="multiples of 32"):
        YoloOnnxDetector(bundled_yolox(), style="yolox", input_size=(384, 500))
    strange = constant_model(tmp_path / "strange.onnx", np.zeros((1, 3, 4), np.float32))
    with pytest.raises(ValueError, match=r"strange\.onnx: unrecognised YOLO output shape"):
        YoloOnnxDetector(strange)
