"""fast-reid's config files load unchanged and merge to the values fast-reid's rules give."""

from __future__ import annotations

import ast
import copy
from pathlib import Path

import pytest
import yaml
from conftest import FIXTURES

from reidkit.config import ConfigError, get_cfg, load_config
from reidkit.config.defaults import REIDKIT_KEYS

FASTREID = FIXTURES / "fastreid_configs"
FASTREID_FILES = sorted(p for p in FASTREID.rglob("*.yml"))
REPO_CONFIGS = sorted((Path(__file__).parents[1] / "configs").rglob("*.yml"))


def _plain(v):
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _drop(tree, dotted_keys):
    tree = copy.deepcopy(tree)
    for key in dotted_keys:
        *parents, leaf = key.split(".")
        node = tree
        for p in parents:
            node = node[p]
        del node[leaf]
    return tree


def fastreid_defaults():
    return yaml.safe_load((FASTREID / "fastreid_defaults_resolved.yaml").read_text())


def naive_merge(path: Path) -> dict:
    """Independent reading of fast-reid's rules: defaults, then each _BASE_ file, then the file;
    strings that are Python literals (tuples) are evaluated."""
    def load(p):
        tree = yaml.safe_load(p.read_text())
        base = tree.pop("_BASE_", None)
        chain = load((p.parent / base).resolve()) if base else []
        return chain + [tree]

    def update(dst, src):
        for k, v in src.items():
            if isinstance(v, dict):
                update(dst[k], v)
            else:
                if isinstance(v, str):
                    try:
                        v = ast.literal_eval(v)
                    except (ValueError, SyntaxError):
                        pass
                dst[k] = _plain(v)
    merged = fastreid_defaults()
    for layer in load(path):
        update(merged, layer)
    return merged


def test_defaults_equal_fastreid_defaults():
    ours = _drop(_plain(get_cfg().to_dict()), REIDKIT_KEYS)
    assert ours == fastreid_defaults()


@pytest.mark.parametrize("path", FASTREID_FILES, ids=lambda p: p.name)
def test_fastreid_files_load_and_merge_like_fastreid(path):
    cfg = load_config(path)
    assert _drop(_plain(cfg.to_dict()), REIDKIT_KEYS) == naive_merge(path)


def test_merged_values_of_sbs():
    cfg = load_config(FASTREID / "Market1501" / "sbs_R50.yml")
    assert cfg.MODEL.LOSSES.NAME == ("CrossEntropyLoss", "TripletLoss")
    assert cfg.MODEL.HEADS.CLS_LAYER == "CircleSoftmax" and cfg.MODEL.HEADS.SCALE == 64
    assert cfg.INPUT.SIZE_TRAIN == [384, 128] and cfg.INPUT.REA.ENABLED is True  # from bagtricks
    assert cfg.SOLVER.ETA_MIN_LR == pytest.approx(7e-7) and isinstance(cfg.SOLVER.ETA_MIN_LR, float)
    assert cfg.OUTPUT_DIR == "logs/market1501/sbs_R50"


@pytest.mark.parametrize("path", REPO_CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_load(path):
    load_config(path)


def test_overrides_and_freeze():
    cfg = load_config(FASTREID / "Base-bagtricks.yml",
                      ["SOLVER.BASE_LR", "0.01", "MODEL.DEVICE", "cpu", "INPUT.SIZE_TEST", "[128, 64]",
                       "SOLVER.MAX_EPOCH", "3"])
    assert cfg.SOLVER.BASE_LR == 0.01 and cfg.MODEL.DEVICE == "cpu" and cfg.INPUT.SIZE_TEST == [128, 64]
    assert cfg.SOLVER.MAX_EPOCH == 3 and isinstance(cfg.SOLVER.MAX_EPOCH, int)
    with pytest.raises(AttributeError, match="frozen"):
        cfg.SOLVER.BASE_LR = 1.0
    clone = cfg.clone().freeze(False)
    clone.SOLVER.BASE_LR = 1.0
    assert cfg.SOLVER.BASE_LR == 0.01


def test_unknown_key_names_key_and_file(tmp_path):
    f = tmp_path / "bad.yml"
    f.write_text("MODEL:\n  BACKBONE:\n    DEPTHH: 50x\n")
    with pytest.raises(ConfigError, match=r"MODEL\.BACKBONE\.DEPTHH.*bad\.yml"):
        load_config(f)
    with pytest.raises(ConfigError, match="SOLVER.NOPE"):
        load_config(None, ["SOLVER.NOPE", "1"])


def test_wrong_type_names_key_file_and_type(tmp_path):
    f = tmp_path / "bad.yml"
    f.write_text("SOLVER:\n  BASE_LR: fast\n")
    with pytest.raises(ConfigError, match=r"SOLVER\.BASE_LR in .*bad\.yml: expected float, got 'fast'"):
        load_config(f)
    f.write_text("MODEL:\n  BACKBONE:\n    WITH_IBN: 1\n")
    with pytest.raises(ConfigError, match="expected bool"):
        load_config(f)
    f.write_text("MODEL: 3\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(f)


def test_base_chain_relative_paths_and_cycles(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "base.yml").write_text("SOLVER:\n  BASE_LR: 0.5\n  MAX_EPOCH: 7\n")
    (tmp_path / "sub" / "child.yml").write_text("_BASE_: ../base.yml\nSOLVER:\n  BASE_LR: 0.25\n")
    cfg = load_config(tmp_path / "sub" / "child.yml")
    assert cfg.SOLVER.BASE_LR == 0.25 and cfg.SOLVER.MAX_EPOCH == 7
    (tmp_path / "a.yml").write_text("_BASE_: b.yml\n")
    (tmp_path / "b.yml").write_text("_BASE_: a.yml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "a.yml")
    (tmp_path / "c.yml").write_text("_BASE_: missing.yml\n")
    with pytest.raises(ConfigError, match="not found.*missing.yml"):
        load_config(tmp_path / "c.yml")


def test_dump_round_trips(tmp_path):
    cfg = load_config(FASTREID / "Market1501" / "AGW_R50.yml")
    f = tmp_path / "dumped.yml"
    f.write_text(cfg.dump())
    assert load_config(f) == cfg


@pytest.mark.parametrize("name", ["bagtricks_R50", "bagtricks_R50-ibn", "sbs_R50", "AGW_R50"])
def test_shipped_market_configs_equal_fastreid(name):
    ours = load_config(Path(__file__).parents[1] / "configs" / "Market1501" / f"{name}.yml")
    assert ours == load_config(FASTREID / "Market1501" / f"{name}.yml")
