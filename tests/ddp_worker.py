"""Run by torchrun from test_training.py: a few DDP iterations, then each rank saves its weights."""

import sys
from pathlib import Path

import torch

from reidkit.config import load_config
from reidkit.engine import launch
from reidkit.engine.hooks import LRSchedule
from reidkit.engine.testing import unwrap
from reidkit.engine.trainer import Trainer

sys.path.insert(0, str(Path(__file__).parent))
from test_training import REPO, TINY  # noqa: E402

root, out = sys.argv[1], Path(sys.argv[2])
cfg = load_config(REPO / "configs" / "Base-bagtricks.yml",
                  [*TINY, "DATASETS.ROOT", root, "OUTPUT_DIR", str(out / "run"), "SOLVER.MAX_EPOCH", "2"])
rank, world, local = launch.distributed_context()
device = torch.device("cpu")
launch.init_distributed(device, world)
launch.seed_everything(cfg.SEED)
records = launch.train_records(cfg)
model = launch.prepare_model(cfg, len({r.pid for r in records}), device, world, local)
torch.save({k: v.clone() for k, v in unwrap(model).state_dict().items()}, out / f"rank{rank}_start.pt")
Trainer(cfg, model, records, [], out / "run", device, rank, world, hooks=[LRSchedule()], progress=False).train()
torch.save(unwrap(model).state_dict(), out / f"rank{rank}.pt")
torch.distributed.destroy_process_group()
