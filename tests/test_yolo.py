"""YOLO-family ONNX detectors: output layouts, letterbox geometry back to frame pixels, NMS,
person class only, and the errors for missing files/packages. The ONNX models here are tiny graphs
with a known output, so every expected box below is worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from reidkit.detection.yolo import YoloOnnxDetector, letterbox, parse_yolo_output


def constant_model(path, output: np.ndarray, size: int = 640):
    """An ONNX model with an image input whose output is ``output`` whatever the image."""
    import onnx
    from onnx import helper, numpy_helper

    nodes = [helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
             helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
             helper.make_node("Add", ["table", "nothing"], ["output0"])]
    inits = [numpy_helper.from_array(output.astype(np.float32), "table"),
             numpy_helper.from_array(np.array(0, np.float32), "zero")]
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
    with pytest.raises(ValueError, match="expected one of ssdlite, hog, onnx:MODEL.onnx"):
        make_detector("yolo", 0.3)
    with pytest.raises(ValueError, match=r"only --detector mot:DET.txt runs without one"):
        make_detector("ssdlite", 0.3, have_frames=False)
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    with pytest.raises(ValueError, match="bad.onnx: onnxruntime cannot load it"):
        make_detector(f"onnx:{tmp_path / 'bad.onnx'}", 0.3)
