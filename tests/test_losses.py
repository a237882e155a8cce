"""The CrissCross loss (docs/method.md §4): stop-gradient, the six relations, group flags, normalisation."""
import itertools
from dataclasses import replace

import pytest
import torch

from crisscross_core.config import LossConfig
from crisscross_core.losses import crisscross_loss, negative_cosine

torch.set_num_threads(1)

VIEWS = ("v1", "v2", "a1", "a2")
# docs/method.md §4 table: term -> (x, y) views; groups by flag
RELATIONS = {"Lv1v2": ("v1", "v2"), "La1a2": ("a1", "a2"), "Lv1a1": ("v1", "a1"),
             "Lv2a2": ("v2", "a2"), "Lv1a2": ("v1", "a2"), "La1v2": ("a1", "v2")}
GROUP_TERMS = {"intra": ("Lv1v2", "La1a2"), "sync": ("Lv1a1", "Lv2a2"), "asynchronous": ("Lv1a2", "La1v2")}


def make_out(b=5, d=16, seed=0, grad=False):
    g = torch.Generator().manual_seed(seed)
    return {f"{k}{v}": torch.randn(b, d, generator=g).requires_grad_(grad) for k in "zp" for v in VIEWS}


def ref_D(p, z):
    """-mean cos, written out: unit-normalise both and take the row-wise dot product."""
    p = p.detach().double()
    z = z.detach().double()
    return -((p / p.norm(dim=1, keepdim=True)) * (z / z.norm(dim=1, keepdim=True))).sum(1).mean()


def ref_term(out, name):
    x, y = RELATIONS[name]
    return 0.5 * ref_D(out["p" + x], out["z" + y]) + 0.5 * ref_D(out["p" + y], out["z" + x])


def test_identical_p_and_z_give_minus_one():
    z = torch.randn(4, 32)
    assert negative_cosine(z, z.clone()).item() == pytest.approx(-1.0, abs=1e-6)
    out = {f"z{v}": z.clone() for v in VIEWS} | {f"p{v}": 2.5 * z.clone() for v in VIEWS}
    total, terms = crisscross_loss(out, LossConfig())
    assert total.item() == pytest.approx(-1.0, abs=1e-6)
    assert all(t.item() == pytest.approx(-1.0, abs=1e-6) for t in terms.values())


def test_opposite_vectors_give_plus_one():
    z = torch.randn(4, 8)
    assert negative_cosine(-z, z).item() == pytest.approx(1.0, abs=1e-6)


def test_six_terms_match_the_spec_table():
    out = make_out()
    total, terms = crisscross_loss(out, LossConfig())
    assert set(terms) == set(RELATIONS)
    for name in RELATIONS:
        assert terms[name].item() == pytest.approx(ref_term(out, name).item(), abs=1e-5), name
    assert total.item() == pytest.approx(sum(ref_term(out, n).item() for n in RELATIONS) / 6, abs=1e-5)


@pytest.mark.parametrize("name", list(RELATIONS))
def test_stop_gradient_target_side_gets_no_gradient(name):
    out = make_out(grad=True)
    _, terms = crisscross_loss(out, LossConfig())
    x, y = RELATIONS[name]
    tensors = [out[k] for k in sorted(out)]
    grads = dict(zip(sorted(out), torch.autograd.grad(terms[name], tensors, allow_unused=True)))
    for key, g in grads.items():
        if key in ("p" + x, "p" + y):
            assert g is not None and g.abs().sum() > 0, key
        else:  # every z is a stop-gradient target; other views' p are not in this term
            assert g is None or torch.all(g == 0), key


@pytest.mark.parametrize("flags", [f for f in itertools.product([True, False], repeat=3) if any(f)])
def test_group_flags_select_terms_and_renormalise(flags):
    cfg = LossConfig(intra=flags[0], sync=flags[1], asynchronous=flags[2])
    out = make_out(seed=1)
    total, terms = crisscross_loss(out, cfg)
    enabled = [t for flag, group in zip(flags, GROUP_TERMS.values()) if flag for t in group]
    assert sorted(terms) == sorted(enabled)
    expected = sum(ref_term(out, n).item() for n in enabled) / len(enabled)
    assert total.item() == pytest.approx(expected, abs=1e-5)


def test_coefficients_weight_their_terms():
    cfg = LossConfig(vid_coeff=2.0, aud_coeff=0.5, cm_coeff=3.0, ct_coeff=0.0)
    out = make_out(seed=2)
    total, _ = crisscross_loss(out, cfg)
    r = {n: ref_term(out, n).item() for n in RELATIONS}
    expected = (2.0 * r["Lv1v2"] + 0.5 * r["La1a2"] + 3.0 * (r["Lv1a1"] + r["Lv2a2"])
                + 0.0 * (r["Lv1a2"] + r["La1v2"])) / 6
    assert total.item() == pytest.approx(expected, abs=1e-5)
    only_sync = replace(cfg, intra=False, asynchronous=False)
    total, _ = crisscross_loss(out, only_sync)
    assert total.item() == pytest.approx(3.0 * (r["Lv1a1"] + r["Lv2a2"]) / 2, abs=1e-5)


def test_no_group_enabled_is_an_error():
    with pytest.raises(ValueError, match="loss.intra"):
        crisscross_loss(make_out(), LossConfig(intra=False, sync=False, asynchronous=False))


def test_cosine_is_fp32_under_autocast():
    p32, z32 = torch.randn(8, 64), torch.randn(8, 64)
    p, z = p32.bfloat16(), z32.bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        d = negative_cosine(p, z)
        total, _ = crisscross_loss({f"{k}{v}": (p if k == "p" else z) for k in "zp" for v in VIEWS},
                                   LossConfig())
    assert d.dtype == torch.float32 and total.dtype == torch.float32
    assert d.item() == pytest.approx(ref_D(p.float(), z.float()).item(), abs=1e-6)
