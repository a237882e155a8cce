"""Two-view train transform (share flags, independence, devices) and the eval transform."""

import pytest
import torch

from crisscross_core.config import AugConfig, VideoAugConfig
from crisscross_core.data.audio import LogMel
from crisscross_core.data.pipeline import EvalTransform, TrainTransform
from crisscross_core.data.video_aug import EvalVideoTransform

torch.set_num_threads(1)


def _cfg():
    return AugConfig(video=VideoAugConfig(crop_size=24))


def _batch(B=4, T=3, H=32, W=40, N=8000, seed=0):
    g = torch.Generator().manual_seed(seed)
    one_v = torch.randint(0, 256, (B, 1, T, H, W, 3), generator=g, dtype=torch.uint8)
    one_a = torch.randn(B, 1, N, generator=g) * 0.1
    # both views hold the same raw data, so any difference comes from the augmentation
    return one_v.expand(B, 2, T, H, W, 3).contiguous(), one_a.expand(B, 2, N).contiguous()


def test_shapes_and_independent_views():
    v, a = _batch()
    tv, ta = TrainTransform(_cfg(), 16000)(v, a, None, generator=torch.Generator().manual_seed(0))
    assert tv.shape == (4, 2, 3, 3, 24, 24) and ta.shape == (4, 2, 1, 80, 51)
    assert tv.dtype == torch.float32 and ta.dtype == torch.float32
    for b in range(4):
        assert (tv[b, 0] - tv[b, 1]).abs().max() > 0.1
        assert (ta[b, 0] - ta[b, 1]).abs().max() > 0.1


def test_share_flags_copy_view_one_per_modality():
    v, a = _batch()
    share = torch.tensor([[True, False], [False, True], [True, True], [False, False]])
    tt = TrainTransform(_cfg(), 16000)
    tv, ta = tt(v, a, share, generator=torch.Generator().manual_seed(0))
    nv, na = tt(v, a, None, generator=torch.Generator().manual_seed(0))
    for b in range(4):
        same_v, same_a = share[b].tolist()
        assert torch.equal(tv[b, 0], nv[b, 0]) and torch.equal(ta[b, 0], na[b, 0])
        assert torch.equal(tv[b, 1], tv[b, 0]) == same_v
        assert torch.equal(ta[b, 1], ta[b, 0]) == same_a
        if not same_v:
            assert torch.equal(tv[b, 1], nv[b, 1])


def test_reproducible_with_generator():
    v, a = _batch()
    tt = TrainTransform(_cfg(), 16000)
    x1 = tt(v, a, None, generator=torch.Generator().manual_seed(7))
    x2 = tt(v, a, None, generator=torch.Generator().manual_seed(7))
    assert torch.equal(x1[0], x2[0]) and torch.equal(x1[1], x2[1])


def test_bad_shapes_name_the_problem():
    v, a = _batch()
    with pytest.raises(ValueError, match=r"\[B, 2, T, H, W, 3\]"):
        TrainTransform(_cfg())(v[:, 0], a)
    with pytest.raises(ValueError, match=r"\[B, 2, N\]"):
        TrainTransform(_cfg())(v, a[:2])


def test_eval_transform_is_deterministic_and_composed():
    v, a = _batch(B=2, H=32, W=40)
    et = EvalTransform(_cfg(), 16000)
    ev, ea = et(v, a)                                             # lead dims [B, K] kept
    assert ev.shape == (2, 2, 3, 3, 24, 24) and ea.shape == (2, 2, 1, 80, 51)
    torch.testing.assert_close(ev[:, 0], EvalVideoTransform(24)(v[:, 0]))
    torch.testing.assert_close(ea[:, 1], LogMel()(a[:, 1]))
    assert torch.equal(et(v, a)[0], ev)
    assert et(video=v)[1] is None and et(audio=a)[0] is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_outputs_on_input_device():
    v, a = _batch()
    tt = TrainTransform(_cfg(), 16000)
    tv, ta = tt(v.cuda(), a.cuda(), torch.tensor([[True, False]] * 4), generator=torch.Generator().manual_seed(0))
    assert tv.device.type == "cuda" and ta.device.type == "cuda"
    cv, ca = tt(v, a, torch.tensor([[True, False]] * 4), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(tv.cpu(), cv, rtol=0, atol=2e-3)
    torch.testing.assert_close(ta.cpu(), ca, rtol=0, atol=1e-3)
