"""Dataset parsers for the published ReID benchmark layouts, and a registry to pick them by name.

Each parser reads file names (and list files) only; images are opened later by the loader.
Camera ids are 0-based. Training identities are relabelled 0..N-1; query and gallery keep their
original ids so the evaluation protocol can compare them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..registry import Registry

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
logger = logging.getLogger(__name__)


class DatasetError(ValueError):
    """A dataset folder is missing, empty, or holds file names the parser cannot read."""


@dataclass(frozen=True)
class ImageRecord:
    path: str
    pid: int
    camid: int


@dataclass
class ReidDataset:
    """Train, query and gallery records of one benchmark."""

    name: str
    root: Path
    train: list[ImageRecord]
    query: list[ImageRecord]
    gallery: list[ImageRecord]
    notes: list[str] = field(default_factory=list)

    def stats(self) -> list[tuple[str, int, int, int]]:
        """(split, identities, images, cameras) for each split."""
        rows = []
        for split, recs in (("train", self.train), ("query", self.query), ("gallery", self.gallery)):
            rows.append((split, len({r.pid for r in recs}), len(recs), len({r.camid for r in recs})))
        return rows

    def summary(self) -> str:
        """A plain-text table of :meth:`stats`."""
        lines = [f"Dataset {self.name} ({self.root})",
                 f"  {'split':<8}{'ids':>8}{'images':>9}{'cameras':>9}"]
        lines += [f"  {s:<8}{i:>8}{n:>9}{c:>9}" for s, i, n, c in self.stats()]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


DATASETS: Registry = Registry(
    "dataset", "parse(root: Path) -> ReidDataset, finding the dataset at or under root; DatasetError "
    "naming the missing folder otherwise", where="DATASETS.NAMES", case_sensitive=False)


def build_dataset(name: str, root: str | Path) -> ReidDataset:
    """Parse dataset ``name`` (e.g. ``Market1501``) found at or under ``root``."""
    try:
        parser = DATASETS.get(name)
    except ValueError as e:
        raise DatasetError(str(e)) from None
    dataset = parser(Path(root).expanduser())
    logger.info("%s", dataset.summary())
    return dataset


def _find_root(root: Path, candidates: tuple[str, ...], required: tuple[str, ...]) -> Path:
    """``root`` itself or the first of ``root/candidate`` that contains all ``required`` entries."""
    for base in (root, *(root / c for c in candidates)):
        if all((base / r).exists() for r in required):
            return base
    tried = ", ".join(str(p) for p in (root, *(root / c for c in candidates)))
    raise DatasetError(f"dataset folder not found: expected {', '.join(required)} inside one of: {tried}")


def _images(folder: Path, required: bool = True) -> list[Path]:
    if not folder.is_dir():
        if not required:
            return []
        raise DatasetError(f"missing folder {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files and required:
        raise DatasetError(f"no images (*{', *'.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


NO_TRAIN_NOTE = "no training images in {}: evaluation only"


def _parse_names(folder: Path, pattern: re.Pattern, cam_base: int, drop_junk: bool,
                 required: bool = True) -> list[ImageRecord]:
    records = []
    for p in _images(folder, required):
        m = pattern.match(p.name)
        if m is None:
            raise DatasetError(f"cannot read identity and camera from file name {p} "
                               f"(expected a name matching {pattern.pattern!r})")
        pid, cam = int(m.group(1)), int(m.group(2))
        if drop_junk and pid == -1:
            continue
        records.append(ImageRecord(str(p), pid, cam - cam_base))
    return records


def relabel(records: list[ImageRecord]) -> list[ImageRecord]:
    """Training ids mapped to 0..N-1 in sorted order of the original ids."""
    mapping = {pid: i for i, pid in enumerate(sorted({r.pid for r in records}))}
    return [ImageRecord(r.path, mapping[r.pid], r.camid) for r in records]


def _market_style(name, root, candidates, dirs, pattern, cam_base=1) -> ReidDataset:
    """Train, query and gallery folders; only query and gallery must exist (evaluation needs no
    training split, and training says so when it is missing)."""
    base = _find_root(root, candidates, dirs[1:])
    train_dir, query_dir, gallery_dir = (base / d for d in dirs)
    train = [r for r in _parse_names(train_dir, pattern, cam_base, True, required=False) if r.pid != 0]
    query = _parse_names(query_dir, pattern, cam_base, True)
    gallery = _parse_names(gallery_dir, pattern, cam_base, True)
    notes = [] if train else [NO_TRAIN_NOTE.format(train_dir)]
    return ReidDataset(name, base, relabel(train), query, gallery, notes)


MARKET_PATTERN = re.compile(r"([-\d]+)_c(\d)")


@DATASETS.register("Market1501", "market")
def parse_Market1501(root: Path) -> ReidDataset:
    """Market-1501: ``bounding_box_train``, ``query``, ``bounding_box_test``; names ``PPPP_cCsS_...``.
    Junk images (id -1) are dropped, distractors (id 0) stay in the gallery."""
    return _market_style("Market1501", root, ("Market-1501-v15.09.15", "market1501", "Market-1501"),
                         ("bounding_box_train", "query", "bounding_box_test"), MARKET_PATTERN)


@DATASETS.register("DukeMTMC", "DukeMTMC-reID", "duke")
def parse_DukeMTMC(root: Path) -> ReidDataset:
    """DukeMTMC-reID: Market's folders, names ``PPPP_cC_fFFFFFFF.jpg``, cameras 1-8."""
    return _market_style("DukeMTMC", root, ("DukeMTMC-reID", "dukemtmc-reid", "dukemtmcreid"),
                         ("bounding_box_train", "query", "bounding_box_test"), MARKET_PATTERN)


@DATASETS.register("CUHK03", "cuhk03np", "cuhk03-np")
def parse_CUHK03(root: Path) -> ReidDataset:
    """CUHK03 under the new (767/700) protocol of Zhong et al. as published in CUHK03-NP:
    ``detected/`` (or ``labeled/``) with Market's three folders and names ``PPPP_cC_N.png``."""
    candidates = ("detected", "cuhk03-np/detected", "cuhk03_np/detected", "labeled", "cuhk03-np/labeled")
    return _market_style("CUHK03", root, candidates, ("bounding_box_train", "query", "bounding_box_test"),
                         MARKET_PATTERN)


VERI_PATTERN = re.compile(r"(\d+)_c(\d+)")


@DATASETS.register("VeRi", "veri776")
def parse_VeRi(root: Path) -> ReidDataset:
    """VeRi-776: ``image_train``, ``image_query``, ``image_test``; names ``VVVV_cCCC_...``."""
    return _market_style("VeRi", root, ("VeRi", "veri", "VeRi-776"),
                         ("image_train", "image_query", "image_test"), VERI_PATTERN)


def _read_list(list_file: Path, image_dir: Path) -> list[ImageRecord]:
    records = []
    for n, line in enumerate(list_file.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            rel, pid = parts[0], int(parts[1])
            cam = int(Path(rel).name.split("_")[2])
        except (IndexError, ValueError):
            raise DatasetError(f"{list_file}:{n}: expected 'SUBDIR/PID_IDX_CAM_....jpg PID', got {line!r}") from None
        records.append(ImageRecord(str(image_dir / rel), pid, cam - 1))
    if not records:
        raise DatasetError(f"list file {list_file} is empty")
    return records


@DATASETS.register("MSMT17", "msmt17_v1", "msmt17_v2")
def parse_MSMT17(root: Path) -> ReidDataset:
    """MSMT17: ``train/`` and ``test/`` image folders with ``list_{train,val,query,gallery}.txt``.
    As in fast-reid, the validation list joins the training set."""
    base = _find_root(root, ("MSMT17_V1", "MSMT17_V2", "MSMT17", "msmt17"), ("list_query.txt", "list_gallery.txt"))
    train_dir = base / ("train" if (base / "train").is_dir() else "mask_train_v2")
    test_dir = base / ("test" if (base / "test").is_dir() else "mask_test_v2")
    train = []
    for listed in ("list_train.txt", "list_val.txt"):
        if (base / listed).exists():
            train += _read_list(base / listed, train_dir)
    notes = [] if train else [NO_TRAIN_NOTE.format(base / "list_train.txt")]
    return ReidDataset("MSMT17", base, relabel(train), _read_list(base / "list_query.txt", test_dir),
                       _read_list(base / "list_gallery.txt", test_dir), notes)


FOLDER_CAMERA = re.compile(r"(?:^|[_-])c(\d+)")


@DATASETS.register("ImageFolder", "folder")
def parse_ImageFolder(root: Path) -> ReidDataset:
    """One folder per identity: ``train/<id>/*``, ``query/<id>/*``, ``gallery/<id>/*`` (``train``
    optional). Identity folders are numbers or names; the camera is read from ``c<N>`` in the file
    name (``_c2``, ``c1s1``) when present, otherwise every image counts as its own camera, so nothing is removed."""
    base = _find_root(root, (), ("query", "gallery"))
    names: dict[str, int] = {}
    splits = {}
    counter = 0
    for split in ("train", "query", "gallery"):
        folder = base / split
        if split == "train" and not folder.exists():
            splits[split] = []
            continue
        if not folder.is_dir():
            raise DatasetError(f"missing folder {folder}")
        ids = sorted(p for p in folder.iterdir() if p.is_dir())
        if not ids:
            raise DatasetError(f"{folder} has no identity sub-folders")
        records = []
        for id_dir in ids:
            pid = names.setdefault(id_dir.name, int(id_dir.name) if id_dir.name.isdigit() else len(names) + 1)
            for img in _images(id_dir):
                m = FOLDER_CAMERA.search(img.stem)
                counter += 1
                records.append(ImageRecord(str(img), pid, int(m.group(1)) if m else -counter))
        splits[split] = records
    notes = [] if splits["train"] else [NO_TRAIN_NOTE.format(base / "train")]
    return ReidDataset("ImageFolder", base, relabel(splits["train"]), splits["query"], splits["gallery"], notes)
