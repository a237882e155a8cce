"""Property tests of the seven temporal relations (spec §5)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from crisscross_core.data.sampling import (RELATIONS, base_snippet, eval_starts, far_apart_starts,
                                           sample_views)

EPS = 1e-9
starts = st.floats(0.0, 3.0)
lengths = st.floats(8.0, 30.0)
durs = st.sampled_from([(0.5, 2.0), (0.25, 1.0), (1.0, 1.0), (2.0, 0.5)])
seeds = st.integers(0, 2**31 - 1)


def inside(w, lim):
    return w[0] >= lim[0] - EPS and w[0] + w[1] <= lim[1] + EPS


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(RELATIONS), starts, lengths, starts, lengths, durs, seeds, st.booleans())
def test_windows_inside_streams(rel, vs, vlen, as_, alen, d, seed, centred):
    vlim, alim = (vs, vs + vlen), (as_, as_ + alen)
    w = sample_views(rel, vlim, alim, d[0], d[1], np.random.default_rng(seed), centred=centred)
    for win, lim, dur in ((w.v1, vlim, d[0]), (w.v2, vlim, d[0]), (w.a1, alim, d[1]), (w.a2, alim, d[1])):
        assert win[1] == dur
        assert inside(win, lim), (rel, win, lim)


@settings(max_examples=100, deadline=None)
@given(lengths, durs, seeds)
def test_overlapped_half_overlap_and_video_inside_audio_snippet(length, d, seed):
    dv, da = d
    w = sample_views("overlapped", (0, length), (0, length), dv, da, np.random.default_rng(seed))
    assert w.v2[0] - w.v1[0] == pytest.approx(dv / 2)          # 50 % overlap per modality
    assert w.a2[0] - w.a1[0] == pytest.approx(da / 2)
    longer, shorter = ((w.a1, w.a2), (w.v1, w.v2)) if da > dv else ((w.v1, w.v2), (w.a1, w.a2))
    lo, hi = longer[0][0], longer[1][0] + longer[1][1]           # the 1.5x joint snippet
    assert lo - EPS <= shorter[0][0] and shorter[1][0] + shorter[1][1] <= hi + EPS
    assert not (w.share_video or w.share_audio)


@settings(max_examples=100, deadline=None)
@given(lengths, durs, seeds)
def test_adjacent_contiguous(length, d, seed):
    dv, da = d
    w = sample_views("adjacent", (0, length), (0, length), dv, da, np.random.default_rng(seed))
    assert w.v2[0] == pytest.approx(w.v1[0] + dv)
    assert w.a2[0] == pytest.approx(w.a1[0] + da)


def test_video_window_uniform_not_centred_inside_audio():
    """§5.1/§11.B1: the video start is uniform over the audio window; centred=True centres it."""
    rng = np.random.default_rng(0)
    rel = []
    for _ in range(2000):
        s_v, s_a = base_snippet((0, 100), (0, 100), 0.5, 2.0, rng)
        assert s_a <= s_v <= s_a + 1.5 + EPS
        rel.append((s_v - s_a) / 1.5)
    hist = np.histogram(rel, bins=5, range=(0, 1))[0]
    assert hist.min() > 300                    # roughly uniform (expected 400 each)
    s_v, s_a = base_snippet((0, 100), (0, 100), 0.5, 2.0, rng, centred=True)
    assert s_v - s_a == pytest.approx(0.75)


@settings(max_examples=100, deadline=None)
@given(st.floats(5.0, 40.0), durs, seeds)
def test_far_apart_offset_is_max_ss(length, d, seed):
    dv, da = d
    vlim = alim = (0.0, length)
    max_ss = min(length / 2 - da, max(length / 2 - dv, 0))
    w = sample_views("far_apart", vlim, alim, dv, da, np.random.default_rng(seed))
    if max_ss >= 0:
        assert w.v2[0] - w.v1[0] == pytest.approx(max_ss)
        assert w.a2[0] - w.a1[0] == pytest.approx(max_ss)
        assert w.v1[0] == w.a1[0] and 0 <= w.v1[0] <= max_ss + EPS   # shared start per view


def test_far_apart_kinetics_example():
    """Spec §5.3: 10 s clip, d_a=2, d_v=0.5 -> s1 in [0, 3], offset exactly 3 s."""
    rng = np.random.default_rng(1)
    s = np.array([far_apart_starts((0, 10), (0, 10), 0.5, 2.0, rng) for _ in range(200)])
    assert np.allclose(s[:, 1] - s[:, 0], 3.0) and s[:, 0].min() >= 0 and s[:, 0].max() <= 3.0
    assert s[:, 0].std() > 0.5


@settings(max_examples=60, deadline=None)
@given(lengths, seeds)
def test_shared_modalities(length, seed):
    w = sample_views("v_far_a_same", (0, length), (0, length), 0.5, 2.0, np.random.default_rng(seed))
    assert w.share_audio and not w.share_video and w.a1 == w.a2 and w.v1 != w.v2
    assert w.a1[0] in (w.v1[0], w.v2[0])
    w = sample_views("v_same_a_far", (0, length), (0, length), 0.5, 2.0, np.random.default_rng(seed))
    assert w.share_video and not w.share_audio and w.v1 == w.v2 and w.a1 != w.a2
    assert w.v1[0] in (w.a1[0], w.a2[0])
    w = sample_views("same_timestamp", (0, length), (0, length), 0.5, 2.0, np.random.default_rng(seed))
    assert w.v1 == w.v2 and w.a1 == w.a2 and not (w.share_video or w.share_audio)


def test_both_shared_choices_occur_and_seeding_is_reproducible():
    picks = {sample_views("v_far_a_same", (0, 10), (0, 10), .5, 2, np.random.default_rng(s)).a1[0] ==
             sample_views("v_far_a_same", (0, 10), (0, 10), .5, 2, np.random.default_rng(s)).v1[0]
             for s in range(40)}
    assert picks == {True, False}
    a = sample_views("random", (0, 10), (0, 10), .5, 2, np.random.default_rng([0, 3, 17]))
    b = sample_views("random", (0, 10), (0, 10), .5, 2, np.random.default_rng([0, 3, 17]))
    c = sample_views("random", (0, 10), (0, 10), .5, 2, np.random.default_rng([0, 4, 17]))
    assert a == b and a != c


def test_short_stream_fallback_starts_at_stream_start():
    w = sample_views("overlapped", (0.0, 1.0), (0.0, 1.0), 0.5, 2.0, np.random.default_rng(0))
    assert w.a1[0] == 0.0 and w.a1[1] == 2.0       # decoder pads; policy decides


def test_unknown_relation_and_eval_starts():
    with pytest.raises(ValueError, match="unknown relation"):
        sample_views("sideways", (0, 10), (0, 10), .5, 2, np.random.default_rng(0))
    s = eval_starts((0.0, 10.0), 2.0, 5)
    assert s[0] == 0 and s[-1] == pytest.approx(8.0) and np.allclose(np.diff(s), 2.0)
    assert eval_starts((0.0, 10.0), 2.0, 1)[0] == pytest.approx(4.0)
