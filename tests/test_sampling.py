"""Property tests of the seven temporal relations (docs/method.md §5)."""
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
    """docs/method.md §5.1 and docs/deviations.md: the video start is uniform over the audio window; centred=True centres it."""
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
    """docs/method.md §5.3: 10 s clip, d_a=2, d_v=0.5 -> s1 in [0, 3], offset exactly 3 s."""
    rng = np.random.default_rng(1)
    st = [far_apart_starts((0, 10), (0, 10), 0.5, 2.0, rng) for _ in range(200)]
    s = np.array([(x.v1, x.v2) for x in st])
    assert np.allclose(s[:, 1] - s[:, 0], 3.0) and s[:, 0].min() >= 0 and s[:, 0].max() <= 3.0
    assert s[:, 0].std() > 0.5 and all(x.a1 == x.v1 and x.a2 == x.v2 and not x.short for x in st)


def ks_two_sample_rejects(x, y, alpha_c=1.95):
    """Two-sample Kolmogorov-Smirnov test at alpha = 0.001 (c = 1.95): True if the samples differ."""
    x, y = np.sort(x), np.sort(y)
    grid = np.concatenate([x, y])
    d = np.abs(np.searchsorted(x, grid, "right") / len(x) - np.searchsorted(y, grid, "right") / len(y)).max()
    return d > alpha_c * np.sqrt((len(x) + len(y)) / (len(x) * len(y)))


def release_far_apart(length, rng, d_v=0.5, d_a=2.0):
    """The release's far-apart starts (v1, a1, v2, a2) for a stream [0, length] in both modalities,
    as the audit describes them: long streams share s1 ~ U[0, max_ss] and s2 = s1 + max_ss; streams up
    to 2·d_a draw audio in U[0, length - d_a] (both audio views) and video v1 ~ U[0, length/2 - d_v]
    independently, v2 = v1 + length/2."""
    if length > 2 * d_a:
        max_ss = min(length / 2 - d_a, max(length / 2 - d_v, 0.0))
        s1 = rng.uniform(0, max_ss)
        return s1, s1, s1 + max_ss, s1 + max_ss
    a = rng.uniform(0, length - d_a)
    v1 = rng.uniform(0, length / 2 - d_v)
    return v1, a, v1 + length / 2, a


@pytest.mark.parametrize("length", [2.5, 3.5, 10.0])
def test_far_apart_starts_follow_the_release_distribution(length):
    """Sampled starts against the release's formulas (two-sample KS per start, exact offsets)."""
    n = 3000
    rng, ref_rng = np.random.default_rng(7), np.random.default_rng(8)
    got = np.array([[w.v1[0], w.a1[0], w.v2[0], w.a2[0]] for w in
                    (sample_views("far_apart", (0, length), (0, length), 0.5, 2.0, rng) for _ in range(n))])
    ref = np.array([release_far_apart(length, ref_rng) for _ in range(n)])
    for col, name in enumerate(("v1", "a1", "v2", "a2")):
        assert not ks_two_sample_rejects(got[:, col], ref[:, col]), (name, length)
        assert got[:, col].std() > 0.1, name                        # random, not a fixed start
    np.testing.assert_allclose(got[:, 2] - got[:, 0], ref[0, 2] - ref[0, 0])   # the video offset
    if length <= 4.0:
        assert np.array_equal(got[:, 1], got[:, 3])                 # one audio start for both views
        assert np.abs(got[:, 0] - got[:, 1]).max() > 0.2            # video not tied to the audio start
        assert np.corrcoef(got[:, 0], got[:, 1])[0, 1] < 0.1
    else:
        assert np.array_equal(got[:, 0], got[:, 1]) and np.array_equal(got[:, 2], got[:, 3])
    # and the test has power: a start shifted by 0.1 s is rejected
    assert ks_two_sample_rejects(got[:, 0] + 0.1, ref[:, 0])


def test_far_apart_exactly_two_audio_windows_takes_the_short_branch():
    """A 4 s stream (2·d_a) fails in the release; here it is a short stream: video offset vf/2 = 2 s,
    audio anywhere in [0, 2] (the long-stream formula would give an offset of 0)."""
    rng = np.random.default_rng(0)
    ws = [sample_views("far_apart", (0, 4.0), (0, 4.0), 0.5, 2.0, rng) for _ in range(500)]
    assert all(w.v2[0] - w.v1[0] == pytest.approx(2.0) for w in ws)
    assert all(inside(x, (0, 4.0)) for w in ws for x in (w.v1, w.v2, w.a1, w.a2))
    a = np.array([w.a1[0] for w in ws])
    assert a.min() < 0.2 and a.max() > 1.8
    assert far_apart_starts((0, 4.0), (0, 4.0), 0.5, 2.0, rng).short
    assert not far_apart_starts((0, 4.01), (0, 4.01), 0.5, 2.0, rng).short


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["far_apart", "v_far_a_same", "v_same_a_far"]), st.floats(2.0, 4.5),
       st.floats(2.0, 4.5), seeds, st.booleans())
def test_far_apart_short_streams_stay_inside(rel, vlen, alen, seed, centred):
    w = sample_views(rel, (0, vlen), (0, alen), 0.5, 2.0, np.random.default_rng(seed), centred=centred)
    for win, lim in ((w.v1, (0, vlen)), (w.v2, (0, vlen)), (w.a1, (0, alen)), (w.a2, (0, alen))):
        assert inside(win, lim), (rel, win, lim)


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
