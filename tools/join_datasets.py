"""Join the training splits of several Market-1501-layout datasets into one folder of links.

Training reads one DATASETS.ROOT; this makes a root whose bounding_box_train holds every given
dataset's training crops, identities and cameras renumbered so that no two datasets share one,
and whose query / bounding_box_test are the first dataset's (the one to validate on). Used for
the synthetic-identity ablations: configs/CUHK03/ablations/synth_continue.yml.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from reidkit.data.datasets import MARKET_PATTERN
PID_STRIDE = 10000


def join(roots: list[Path], out: Path) -> list[tuple[Path, int, int]]:
    """Link the roots' training crops into out; returns (root, crops, cameras) per root."""
    if out.exists():
        raise SystemExit(f"{out} exists: give a new folder")
    for root in roots:
        if not (root / "bounding_box_train").is_dir():
            raise SystemExit(f"{root}: no bounding_box_train folder (Market-1501 layout expected)")
    for split in ("query", "bounding_box_test"):
        if not (roots[0] / split).is_dir():
            raise SystemExit(f"{roots[0]}: no {split} folder; the first dataset gives the test splits")
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        raise SystemExit(f"{tmp} exists (an earlier run stopped half-way): remove it")
    (tmp / "bounding_box_train").mkdir(parents=True)
    for split in ("query", "bounding_box_test"):
        os.symlink((roots[0] / split).resolve(), tmp / split)
    counts = []
    cam_base = 0
    for i, root in enumerate(roots):
        cams = set()
        n = 0
        for f in sorted((root / "bounding_box_train").iterdir()):
            m = MARKET_PATTERN.match(f.name)  # the parser's own reading of the names
            if m is None or f.suffix.lower() not in (".jpg", ".jpeg", ".png"):
                continue
            pid, cam = int(m.group(1)), int(m.group(2))
            if pid < 0:
                continue
            if pid >= PID_STRIDE:
                raise SystemExit(f"{f}: identity {pid} >= {PID_STRIDE}, cannot be renumbered apart")
            cams.add(cam)
            new_cam = cam_base + cam
            if new_cam > 9:
                raise SystemExit(f"{f}: more than 9 cameras in all; Market-1501 names hold one digit")
            name = f"{pid + i * PID_STRIDE:04d}_c{new_cam}{f.name[m.end():]}"
            os.symlink(f.resolve(), tmp / "bounding_box_train" / name)
            n += 1
        if n == 0:
            raise SystemExit(f"{root}/bounding_box_train: no crops named PID_cCAM...")
        counts.append((root, n, len(cams)))
        cam_base += max(cams)
    tmp.rename(out)
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("roots", nargs="+", type=Path, help="Market-1501-layout folders; the first gives query and gallery")
    ap.add_argument("-o", "--out", type=Path, required=True, help="new folder to write")
    args = ap.parse_args()
    for root, n, cams in join(args.roots, args.out):
        print(f"{root}: {n} training crops, {cams} cameras")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
