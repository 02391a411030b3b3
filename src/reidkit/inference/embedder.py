"""``Embedder``: images in, L2-normalised ReID features out, from a torch model or an ONNX file.

One object for every place that needs features (``reid extract``, galleries, the tracker):
batched inference under ``torch.inference_mode`` with channels-last inputs on CPU, optional
flip averaging, and a thread pool that decodes and resizes the next batch while the model runs.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import numpy as np

from ..evaluation.distance import l2_normalize
from ..model_card import ONNX_KEY, ModelCard
from .preprocess import ImageReadError, check_image, check_preprocess, load_resized, resize

logger = logging.getLogger(__name__)

RUNTIMES = ("torch", "onnxruntime")
#: Exporting a model to ONNX takes about 2.5 s on 2 cores (Lite0) and onnxruntime then embeds
#: about twice as fast as torch (105 vs 47 crops/s), so it pays from a few hundred images.
ONNX_PAYS_FROM = 256


def runtime_for(images: int, device: str = "cpu") -> str:
    """The faster runtime for embedding ``images`` images on ``device``: onnxruntime on CPU when
    there are enough of them to repay the export, else torch."""
    return "onnxruntime" if str(device) == "cpu" and images >= ONNX_PAYS_FROM else "torch"

# A runner maps a uint8 batch (N, H, W, 3) to raw float32 features (N, D).
Runner = Callable[[np.ndarray], np.ndarray]


class Embedder:
    """Features of pedestrian crops: RGB uint8 arrays of any size in, (N, D) float32 unit vectors out.

    Build one with :meth:`default`, :meth:`from_checkpoint`, :meth:`from_config` or :meth:`from_onnx`.
    ``preprocess`` picks fast-reid's resizing: ``loader`` (PIL bicubic, its evaluation loader) or
    ``demo`` (OpenCV bicubic, its ``demo/predictor.py``). ``flip`` averages each crop's features
    with those of its mirror image before normalising.
    """

    def __init__(self, runner: Runner, input_size: tuple[int, int], dim: int, *, name: str = "model",
                 preprocess: str = "loader", flip: bool = False, batch_size: int = 32, workers: int = 2,
                 runtime: str = "python", card: Optional[ModelCard] = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.runner = runner
        self.runtime = runtime  # what runs the model: torch, onnxruntime (or python for plain functions)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.dim = int(dim)
        self.name = name
        self.preprocess = check_preprocess(preprocess)
        self.flip = flip
        self.batch_size = batch_size
        self.workers = max(1, workers)
        #: The model card of the weights (None for plain functions and bare torch modules).
        self.card = card
        if card is not None and (card.input_size != self.input_size or card.dim != self.dim):
            raise ValueError(f"{name}: its model card says input {card.input_size}, dim {card.dim}; the model takes "
                             f"{self.input_size} and gives {self.dim}")

    def __repr__(self) -> str:
        h, w = self.input_size
        return (f"Embedder({self.name}, input {h}x{w}, dim {self.dim}, {self.runtime}, "
                f"preprocess={self.preprocess}, flip={self.flip}, batch_size={self.batch_size})")

    # ---- construction --------------------------------------------------------------------------

    @classmethod
    def default(cls, **kwargs) -> "Embedder":
        """The shipped default model (Lite0 ReID-trained on CUHK03)."""
        from ..weights import default_weights

        return cls.from_checkpoint(default_weights(), **kwargs)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu", **kwargs) -> "Embedder":
        """A reidkit checkpoint, which carries its own config and model card (input size,
        resizing and flip come from the card unless given)."""
        from ..checkpoint import checkpoint_card, load_checkpoint, model_from_checkpoint

        model, cfg = model_from_checkpoint(path)
        card = checkpoint_card(load_checkpoint(path), str(path), cfg, model.embedding_dim)
        kwargs.setdefault("name", Path(path).name)
        return cls._from_card(model, card, device, kwargs)

    @classmethod
    def from_config(cls, cfg, weights: str | Path | None = None, device: str = "cpu", **kwargs) -> "Embedder":
        """The model ``cfg`` describes, with ``weights`` (default ``cfg.MODEL.WEIGHTS``) loaded:
        a reidkit or fast-reid checkpoint; its card is completed from ``cfg``."""
        from ..checkpoint import checkpoint_card, load_checkpoint, model_from_config

        weights = weights or cfg.MODEL.WEIGHTS
        if not weights:
            raise ValueError("no weights: give MODEL.WEIGHTS (a reidkit or fast-reid checkpoint)")
        model, cfg = model_from_config(cfg, weights)
        card = checkpoint_card(load_checkpoint(weights), str(weights), cfg, model.embedding_dim, config_decides=True)
        kwargs.setdefault("name", Path(weights).name)
        return cls._from_card(model, card, device, kwargs)

    @classmethod
    def _from_card(cls, model, card: ModelCard, device: str, kwargs: dict) -> "Embedder":
        kwargs.setdefault("preprocess", card.preprocess)
        kwargs.setdefault("flip", card.flip)
        return cls.from_model(model, card.input_size, device=device, card=card, **kwargs)

    @classmethod
    def from_model(cls, model, input_size: tuple[int, int], device: str = "cpu", runtime: str = "torch",
                   spinning: bool = True, **kwargs) -> "Embedder":
        """Any torch module mapping (N, 3, H, W) float 0-255 images to (N, D) features.

        ``runtime="onnxruntime"`` exports it to ONNX in memory (2-3 s) and runs that: about twice
        as fast on CPU, with the same features to ~1e-5 (see :func:`runtime_for`). A model the
        exporter cannot handle runs in torch, with a warning."""
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {runtime!r} (expected one of {', '.join(RUNTIMES)})")
        if runtime == "onnxruntime" and str(device) == "cpu":
            from .onnx_graph import onnx_bytes

            try:
                data = onnx_bytes(model, input_size, card=kwargs.get("card"))
            except (RuntimeError, NotImplementedError) as e:  # what torch.onnx raises for ops it cannot export
                logger.warning("%s: ONNX export failed (%s); running it in torch", kwargs.get("name", "model"),
                               str(e).splitlines()[0] if str(e) else type(e).__name__)
            else:
                onnx_runner = OnnxRunner(data, spinning=spinning, name=kwargs.get("name", "model"))
                return cls(onnx_runner, onnx_runner.input_size, onnx_runner.dim, runtime="onnxruntime", **kwargs)
        runner = TorchRunner(model, device)
        runner.fold_norms(input_size)
        return cls(runner, input_size, runner.output_dim(input_size), runtime="torch", **kwargs)

    @classmethod
    def from_onnx(cls, path: str | Path, providers: Sequence[str] | None = None, spinning: bool = True,
                  **kwargs) -> "Embedder":
        """An ONNX model written by ``reid export onnx`` (or any with input (N, 3, H, W) float 0-255);
        resizing and flip come from its model card when it has one (``reidkit.card`` metadata).
        ``spinning=False`` lets idle onnxruntime threads sleep: slower alone, faster beside other work."""
        runner = OnnxRunner(path, providers, spinning)
        kwargs.setdefault("name", Path(path).name)
        if runner.card is not None:
            kwargs.setdefault("preprocess", runner.card.preprocess)
            kwargs.setdefault("flip", runner.card.flip)
        return cls(runner, runner.input_size, runner.dim, runtime="onnxruntime", card=runner.card, **kwargs)

    # ---- embedding -----------------------------------------------------------------------------

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """L2-normalised features (N, D) of RGB uint8 images of any size."""
        if len(images) == 0:
            return np.zeros((0, self.dim), np.float32)
        checked = [check_image(im, i) for i, im in enumerate(images)]
        out = []
        for s in range(0, len(checked), self.batch_size):
            batch = np.stack([resize(im, self.input_size, self.preprocess) for im in checked[s:s + self.batch_size]])
            out.append(self._features(batch))
        return np.concatenate(out)

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """One RGB uint8 image resized to the model's input, ready for :meth:`embed_prepared`."""
        return resize(check_image(image), self.input_size, self.preprocess)

    def embed_prepared(self, batch: np.ndarray) -> np.ndarray:
        """Features (N, D) of a stack of images made by :meth:`prepare` (N, H, W, 3): the model alone,
        for callers that decode in their own threads and batch requests (``reid serve``)."""
        if batch.ndim != 4 or batch.shape[1:] != (*self.input_size, 3) or batch.dtype != np.uint8:
            raise ValueError(f"expected a uint8 batch of shape (N, {self.input_size[0]}, {self.input_size[1]}, 3), "
                             f"got {batch.dtype} {batch.shape}")
        return self._features(batch)

    def embed_files(self, paths: Sequence[str | Path], progress: Callable[[int], None] | None = None
                    ) -> tuple[np.ndarray, list[int], list[tuple[int, str]]]:
        """Features of image files: ``(feats, ok, failed)`` where ``feats[i]`` belongs to
        ``paths[ok[i]]`` and ``failed`` lists ``(index, reason)`` of files that could not be read.

        Decoding and resizing run in a thread pool one batch ahead of the model; ``progress`` is
        called with the number of files finished after each batch.
        """
        feats, ok, failed = [], [], []
        for idx, batch, errors in self._prefetched_batches(paths):
            failed.extend(errors)
            if len(batch):
                feats.append(self._features(batch))
                ok.extend(idx)
            if progress is not None:
                progress(len(idx) + len(errors))
        feats_arr = np.concatenate(feats) if feats else np.zeros((0, self.dim), np.float32)
        return feats_arr, ok, failed

    def _prefetched_batches(self, paths: Sequence[str | Path]) -> Iterator[tuple[list[int], np.ndarray, list]]:
        def load(i: int):
            try:
                return i, load_resized(paths[i], self.input_size, self.preprocess), None
            except ImageReadError as e:
                return i, None, str(e)

        chunks = [range(s, min(s + self.batch_size, len(paths))) for s in range(0, len(paths), self.batch_size)]
        with ThreadPoolExecutor(self.workers, thread_name_prefix="reidkit-decode") as pool:
            pending = [pool.map(load, c) for c in chunks[:2]]
            for n in range(len(chunks)):
                results = list(pending[n])
                if n + 2 < len(chunks):
                    pending.append(pool.map(load, chunks[n + 2]))
                idx = [i for i, im, _ in results if im is not None]
                errors = [(i, err) for i, im, err in results if im is None]
                batch = np.stack([im for _, im, _ in results if im is not None]) if idx else np.zeros((0,))
                yield idx, batch, errors

    def _features(self, batch: np.ndarray) -> np.ndarray:
        feats = self.runner(batch)
        if self.flip:
            feats = (feats + self.runner(np.ascontiguousarray(batch[:, :, ::-1]))) / 2
        return l2_normalize(feats)


class TorchRunner:
    """A torch model on CPU (channels-last inputs) or CUDA, under ``torch.inference_mode``; the
    model is copied when its BatchNorms are folded, never changed in place."""

    def __init__(self, model, device: str = "cpu"):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but torch sees no CUDA GPU: use device 'cpu'")
        self.memory_format = torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        self.model = model.eval().to(self.device, memory_format=self.memory_format)

    def fold_norms(self, input_size: tuple[int, int]) -> None:
        """Specialise the model to ``input_size``: constant "same" padding, BatchNorm folded into
        the preceding convolutions (each checked on a random batch, see ``fuse``)."""
        from .fuse import fold_batchnorm, static_same_padding

        example = (self.torch.rand(2, 3, *input_size) * 255).to(self.device)
        example = example.contiguous(memory_format=self.memory_format)
        self.model = fold_batchnorm(static_same_padding(self.model, example), example)

    def output_dim(self, input_size: tuple[int, int]) -> int:
        return int(self(np.zeros((1, *input_size, 3), np.uint8)).shape[1])

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        torch = self.torch
        with torch.inference_mode():
            # (N, H, W, 3) viewed as (N, 3, H, W) is already channels-last in memory.
            x = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2).float()
            x = x.contiguous(memory_format=self.memory_format)
            return self.model(x).float().cpu().numpy()


class OnnxRunner:
    """An ONNX model run by onnxruntime: CUDA/TensorRT providers when present, else CPU."""

    def __init__(self, model: str | Path | bytes, providers: Sequence[str] | None = None, spinning: bool = True,
                 name: str = "model"):
        from ..onnx_session import ort_session

        source = model if isinstance(model, bytes) else Path(model)
        name = name if isinstance(model, bytes) else str(model)
        self.session = ort_session(source, providers, spinning, name=name)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = inp.shape
        if len(shape) != 4 or shape[1] != 3 or not all(isinstance(d, int) for d in shape[2:]):
            raise ValueError(f"{name}: expected an input of shape (N, 3, H, W) with fixed H and W, got {shape}")
        self.input_size = (int(shape[2]), int(shape[3]))
        out_shape = self.session.get_outputs()[0].shape
        self.dim = int(out_shape[1]) if isinstance(out_shape[1], int) else \
            int(self(np.zeros((1, *self.input_size, 3), np.uint8)).shape[1])
        card = self.session.get_modelmeta().custom_metadata_map.get(ONNX_KEY)
        #: The model card the export carries (None for ONNX files from elsewhere).
        self.card = ModelCard.from_json(card, name) if card else None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)
        return self.session.run(None, {self.input_name: x})[0]

