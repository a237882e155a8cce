"""Encoders, heads and the pretraining model against the facts of docs/method.md §2 and docs/method.md §3.3.

The expected key lists are generated here from the layout rules of docs/method.md §3.3, independently of the model code.
"""
import pytest
import torch

from crisscross_core.config import ModelConfig, load_config
from crisscross_core.models import AudioResNet, CrissCross, Predictor, Projector, R2Plus1D

torch.set_num_threads(1)

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _bn(prefix, c):
    return {f"{prefix}.{n}": (() if n == "num_batches_tracked" else (c,)) for n in BN}


def spec_video_keys(blocks=(2, 2, 2, 2), w=(64, 128, 256, 512)):
    """docs/method.md §3.3 video backbone: key -> shape."""
    keys = {"conv1.0.weight": (w[0], 3, 3, 7, 7), **_bn("conv1.1", w[0])}
    cin = w[0]
    for s, (stage, n, c) in enumerate(zip(("conv2x", "conv3x", "conv4x", "conv5x"), blocks, w)):
        for b in range(n):
            ci = cin if b == 0 else c
            p = f"{stage}.{b}"
            keys[f"{p}.spt_conv1.weight"] = (c, ci, 1, 3, 3)
            keys.update(_bn(f"{p}.spt_bn1", c))
            keys[f"{p}.tmp_conv1.weight"] = (c, c, 3, 1, 1)
            keys.update(_bn(f"{p}.tmp_bn1", c))
            keys[f"{p}.spt_conv2.weight"] = (c, c, 1, 3, 3)
            keys.update(_bn(f"{p}.spt_bn2", c))
            keys[f"{p}.tmp_conv2.weight"] = (c, c, 3, 1, 1)
            keys.update(_bn(f"{p}.out_bn", c))
            if b == 0 and s > 0:
                keys[f"{p}.res_conv.weight"] = (c, ci, 1, 1, 1)
        cin = c
    return keys


def spec_audio_keys():
    """docs/method.md §3.3 audio backbone: key -> shape."""
    keys = {"conv1.0.weight": (64, 1, 7, 7), **_bn("conv1.1", 64)}
    for k, c in enumerate((64, 128, 256, 512), start=1):
        for b in range(2):
            ci = c // 2 if (b == 0 and k > 1) else c
            p = f"block{k}.{b}"
            keys[f"{p}.conv1.weight"] = (c, ci, 3, 3)
            keys.update(_bn(f"{p}.bn1", c))
            keys[f"{p}.conv2.weight"] = (c, c, 3, 3)
            keys.update(_bn(f"{p}.bn2", c))
            if b == 0 and k > 1:
                keys[f"{p}.downsample.0.weight"] = (c, c // 2, 1, 1)
                keys.update(_bn(f"{p}.downsample.1", c))
    return keys


def spec_head_keys(mod):
    keys = {}
    for i, cin in enumerate((512, 2048, 2048), start=1):
        keys[f"{mod}_projector.layer{i}.0.weight"] = (2048, cin)
        keys[f"{mod}_projector.layer{i}.0.bias"] = (2048,)
        keys.update(_bn(f"{mod}_projector.layer{i}.1", 2048))
    keys[f"{mod}_predictor.layer1.0.weight"] = (512, 2048)
    keys[f"{mod}_predictor.layer1.0.bias"] = (512,)
    keys.update(_bn(f"{mod}_predictor.layer1.1", 512))
    keys[f"{mod}_predictor.layer2.weight"] = (2048, 512)
    keys[f"{mod}_predictor.layer2.bias"] = (2048,)
    return keys


def shapes(module):
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def n_params(module):
    return sum(p.numel() for p in module.parameters())


# ----------------------------------------------------------------------------- keys and counts

def test_video_state_dict_equals_release_layout():
    got = shapes(R2Plus1D(18))
    assert len(got) == 201
    assert got == spec_video_keys()
    assert list(got) == list(spec_video_keys())  # same order as the released OrderedDict


def test_audio_state_dict_equals_release_layout():
    got = shapes(AudioResNet(18))
    assert len(got) == 120
    assert got == spec_audio_keys()


def test_full_model_keys_have_release_names_and_no_aliases():
    got = shapes(CrissCross())
    expected = {f"video_backbone.{k}": v for k, v in spec_video_keys().items()}
    expected.update({f"audio_backbone.{k}": v for k, v in spec_audio_keys().items()})
    expected.update(spec_head_keys("video"))
    expected.update(spec_head_keys("audio"))
    assert got == expected
    assert not any(k.startswith(("video_encoder", "audio_encoder")) for k in got)


def test_parameter_counts_match_release():
    model = CrissCross()
    assert n_params(model.video_backbone) == 15_379_136
    assert n_params(model.audio_backbone) == 11_170_240
    assert n_params(model.video_projector) == 9_455_616
    assert n_params(model.video_predictor) == 2_100_736
    assert n_params(model) == 49_662_080
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 49_662_080


def test_depth_34_and_10_keys_follow_the_same_rules():
    assert shapes(R2Plus1D(34)) == spec_video_keys((3, 4, 6, 3))
    assert shapes(R2Plus1D(10, width=0.5)) == spec_video_keys((1, 1, 1, 1), (32, 64, 128, 256))


# ----------------------------------------------------------------------------- stage shapes

VIDEO_TABLE = {  # docs/method.md §2.1: input (T, H, W) -> stage maps (C, T, H, W)
    (8, 112, 112): {"conv1": (64, 8, 28, 28), "conv2x": (64, 8, 28, 28), "conv3x": (128, 4, 14, 14),
                    "conv4x": (256, 2, 7, 7), "conv5x": (512, 1, 4, 4), "pool": (512, 1, 1, 1)},
    (32, 224, 224): {"conv5x": (512, 4, 7, 7), "pool": (512, 1, 1, 1)},
}
AUDIO_TABLE = {  # docs/method.md §2.2: input (F, T) -> stage maps (C, F, T)
    (80, 201): {"conv2x": (64, 20, 51), "conv3x": (128, 10, 26), "conv4x": (256, 5, 13),
                "conv5x": (512, 3, 7), "pool": (512, 1, 1)},
    (80, 501): {"conv5x": (512, 3, 16), "pool": (512, 1, 1)},
    (80, 101): {"conv5x": (512, 3, 4)},
}


@pytest.fixture(scope="module")
def paper_video():
    return R2Plus1D(18).eval()


@pytest.mark.parametrize("size", list(VIDEO_TABLE))
def test_video_stage_shapes_match_spec(paper_video, size):
    with torch.no_grad():
        embs = paper_video(torch.randn(1, 3, *size), return_embs=True)
        assert list(embs) == ["conv1", "conv2x", "conv3x", "conv4x", "conv5x", "pool"]
        for name, shape in VIDEO_TABLE[size].items():
            assert tuple(embs[name].shape) == (1, *shape), name
        if size == (8, 112, 112):
            feats = paper_video(torch.randn(1, 3, *size))
            assert tuple(feats.shape) == (1, 512)


@pytest.mark.parametrize("size", list(AUDIO_TABLE))
def test_audio_stage_shapes_match_spec(size):
    model = AudioResNet(18).eval()
    with torch.no_grad():
        embs = model(torch.randn(1, 1, *size), return_embs=True)
    assert list(embs) == ["conv2x", "conv3x", "conv4x", "conv5x", "pool"]
    for name, shape in AUDIO_TABLE[size].items():
        assert tuple(embs[name].shape) == (1, *shape), name


def test_audio_init_is_kaiming_fan_out():
    model = AudioResNet(18)
    w = model.block4[1].conv2.weight  # fan_out = 512*3*3 -> std sqrt(2/4608)
    assert abs(w.std().item() - (2 / (512 * 9)) ** 0.5) < 0.002
    assert torch.all(model.block4[1].bn2.weight == 1) and torch.all(model.block4[1].bn2.bias == 0)


def test_encoders_reject_wrong_input_layout():
    with pytest.raises(ValueError, match=r"\[B, 3, T, H, W\]"):
        R2Plus1D(10, 0.125)(torch.randn(1, 8, 3, 16, 16))
    with pytest.raises(ValueError, match=r"\[B, 1, F, T\]"):
        AudioResNet(18, 0.125)(torch.randn(1, 80, 101))
    with pytest.raises(ValueError, match="depth=50"):
        R2Plus1D(50)


# ----------------------------------------------------------------------------- parametrised small models

@pytest.mark.parametrize("depth", [10, 18, 34])
@pytest.mark.parametrize("width", [0.125, 0.25])
def test_video_forward_backward(depth, width):
    model = R2Plus1D(depth, width)
    assert model.output_dim == int(512 * width)
    x = torch.randn(2, 3, 4, 32, 32, requires_grad=True)
    out = model(x)
    assert out.shape == (2, model.output_dim)
    out.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("depth", [10, 18, 34])
@pytest.mark.parametrize("width", [0.125, 0.25])
def test_audio_forward_backward(depth, width):
    model = AudioResNet(depth, width)
    assert model.output_dim == int(512 * width)
    x = torch.randn(2, 1, 40, 64, requires_grad=True)
    out = model(x)
    assert out.shape == (2, model.output_dim)
    out.square().mean().backward()
    assert torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in model.parameters())


# ----------------------------------------------------------------------------- heads and model

def test_projector_layers_and_two_layer_mode_keeps_unused_layer2():
    torch.manual_seed(0)
    p3, p2 = Projector(16, 32, 3), Projector(16, 32, 2)
    assert shapes(p3) == shapes(p2)
    assert n_params(p3) == n_params(p2)
    x = torch.randn(4, 16)
    before = p2(x)
    with torch.no_grad():
        p2.layer2[0].weight.add_(1.0)
    assert torch.equal(p2(x), before)  # layer2 skipped in forward
    assert not any(p.requires_grad for p in p2.layer2.parameters())
    y = p3(x)
    assert (y < 0).any()  # last layer has no ReLU
    assert not torch.equal(y, p3.layer3(p3.layer1(x)))  # 3-layer mode uses layer2
    with pytest.raises(ValueError):
        Projector(16, 32, 4)


def test_projector_output_bn_affine_as_released_or_plain_as_simsiam():
    released, simsiam = Projector(16, 32, 2), Projector(16, 32, 2, out_affine=False)
    assert "layer3.1.weight" in released.state_dict() and "layer3.1.weight" not in simsiam.state_dict()
    with torch.no_grad():
        released.layer3[1].weight.zero_()          # an affine BN can scale a dimension away ...
    z = torch.randn(64, 16)
    assert released(z).std(0).min() == 0
    assert simsiam(z).std(0).min() > 0.9           # ... the plain one keeps every dimension at unit std
    cfg = load_config("tiny_cpu", ["model.proj_out_affine=false"])
    model = CrissCross.from_config(cfg.model)
    assert not model.video_projector.layer3[1].affine and not model.audio_projector.layer3[1].affine


def test_predictor_is_bottleneck_with_linear_output():
    pred = Predictor(32, 8)
    assert pred.layer1[0].out_features == 8 and pred.layer2.out_features == 32
    out = pred(torch.randn(4, 32))
    assert out.shape == (4, 32) and (out < 0).any()


def _tiny_inputs(b=3):
    torch.manual_seed(0)
    v = lambda: torch.randn(b, 3, 4, 32, 32)
    a = lambda: torch.randn(b, 1, 40, 48)
    return v(), v(), a(), a()


def _tiny_cfg(**kw):
    return ModelConfig(video_depth=10, video_width=0.125, audio_width=0.125, proj_dim=32,
                       proj_layers=2, pred_hidden=8, **kw)


def test_from_config_tiny_preset_outputs():
    cfg = load_config("tiny_cpu").model
    model = CrissCross.from_config(cfg)
    assert model.video_backbone.output_dim == 128 and model.audio_backbone.output_dim == 128
    out = model(*_tiny_inputs(2))
    assert sorted(out) == sorted(["zv1", "zv2", "za1", "za2", "pv1", "pv2", "pa1", "pa2"])
    assert all(t.shape == (2, cfg.proj_dim) for t in out.values())
    assert model.embed_video(torch.randn(2, 3, 4, 32, 32)).shape == (2, 128)
    assert model.embed_audio(torch.randn(2, 1, 40, 48)).shape == (2, 128)


def test_views_are_separate_encoder_calls():
    """BN statistics per input: zv1 must not depend on v2 in train mode (docs/method.md §7.1)."""
    model = CrissCross.from_config(_tiny_cfg()).train()
    v1, v2, a1, a2 = _tiny_inputs()
    out1 = model(v1, v2, a1, a2)
    out2 = model(v1, v2 * 3 + 1, a1, a2 * 3 + 1)
    assert torch.allclose(out1["zv1"], out2["zv1"], atol=1e-6)
    assert torch.allclose(out1["za1"], out2["za1"], atol=1e-6)
    assert not torch.allclose(out1["zv2"], out2["zv2"], atol=1e-3)


@pytest.mark.parametrize("pre_norm", [False, True])
def test_pre_norm_normalises_z_before_predictor(pre_norm):
    model = CrissCross.from_config(_tiny_cfg(pre_norm=pre_norm)).eval()
    v1, v2, a1, a2 = _tiny_inputs()
    with torch.no_grad():
        out = model(v1, v2, a1, a2)
        raw = model.video_projector(model.embed_video(v1))
        norms = out["zv1"].norm(dim=1)
        if pre_norm:
            assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)
            z = raw / raw.norm(dim=1, keepdim=True)
        else:
            z = raw
            assert not torch.allclose(norms, torch.ones_like(norms), atol=1e-2)
        assert torch.allclose(out["zv1"], z, atol=1e-5)
        assert torch.allclose(out["pv1"], model.video_predictor(z), atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_bf16_channels_last_matches_fp32():
    from crisscross_core.config import LossConfig
    from crisscross_core.losses import crisscross_loss
    model = CrissCross.from_config(_tiny_cfg()).cuda().train()
    inputs = [x.cuda() for x in _tiny_inputs(4)]
    ref, _ = crisscross_loss(model(*inputs), LossConfig())
    model.video_backbone.to(memory_format=torch.channels_last_3d)
    inputs[0] = inputs[0].contiguous(memory_format=torch.channels_last_3d)
    inputs[1] = inputs[1].contiguous(memory_format=torch.channels_last_3d)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss, _ = crisscross_loss(model(*inputs), LossConfig())
    assert loss.dtype == torch.float32
    loss.backward()
    assert abs(loss.item() - ref.item()) < 0.05
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
