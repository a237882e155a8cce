"""The seven temporal relations between the two views (docs/method.md §5), as pure functions.

Inputs are stream limits (start_s, end_s) for video and audio, per-view durations, and a
`numpy.random.Generator`. Output: `ViewWindows` with (start_s, dur_s) for v1, a1, v2, a2 and two
flags saying whether both video / both audio views are *one tensor* (one augmentation, docs/deviations.md).

    rng = np.random.default_rng([seed, epoch, index])
    w = sample_views("overlapped", (0, 10), (0, 10), 0.5, 2.0, rng)
    # w.v1 = (s_v, .5), w.v2 = (s_v + .25, .5), w.a1 = (s_a, 2), w.a2 = (s_a + 1, 2)

Faithful to the release by default: the video window lies uniformly *somewhere* inside the audio
window (docs/method.md §5.1), the far-apart offset is `max_ss` computed from halved absolute times (docs/method.md §5.3), and
streams of at most two audio windows take the release's short-stream branch (`far_apart_starts`).
`centred=True` centres the video window in the audio window instead (docs/deviations.md). Deviation: windows
are finally clamped into their streams when a stream is long enough (matters only for streams that
do not start at 0, where the halved-times quirk could place a window before the stream start).
The differences from the release are listed in docs/deviations.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RELATIONS = ("same_timestamp", "overlapped", "adjacent", "random", "far_apart",
             "v_far_a_same", "v_same_a_far")

Limits = tuple  # (start_s, end_s)


@dataclass(frozen=True)
class ViewWindows:
    """(start_s, dur_s) per view; share_* = both views of that modality are one tensor."""
    v1: tuple
    a1: tuple
    v2: tuple
    a2: tuple
    share_video: bool = False
    share_audio: bool = False

    def as_array(self) -> np.ndarray:
        """float32 [4, 2], rows v1, a1, v2, a2; columns start_s, dur_s."""
        return np.array([self.v1, self.a1, self.v2, self.a2], dtype=np.float32)


def _uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(lo) if hi <= lo else float(rng.uniform(lo, hi))


def _clamp(start: float, dur: float, lim: Limits) -> float:
    """Move a window into [lim0, lim1] when it fits; otherwise start it at the stream start."""
    if lim[1] - lim[0] < dur:
        return float(lim[0])
    return float(min(max(start, lim[0]), lim[1] - dur))


def base_snippet(vlim: Limits, alim: Limits, d_v: float, d_a: float, rng: np.random.Generator,
                 centred: bool = False) -> tuple[float, float]:
    """(s_v, s_a) for one joint snippet (docs/method.md §5.1). The shorter window lies inside the longer one.

    d_a > d_v: s_a ~ U[max(as, vs), min(af - d_a, vf - d_v)], s_v ~ U[max(s_a, vs), min(s_a + d_a, vf) - d_v];
    roles swap when d_v >= d_a. Too-short streams: the outer window starts at the common start.
    """
    (vs, vf), (as_, af) = vlim, alim
    if d_a > d_v:
        s_a = _uniform(rng, max(as_, vs), min(af - d_a, vf - d_v))
        if centred:
            s_v = _clamp(s_a + (d_a - d_v) / 2, d_v, vlim)
        else:
            s_v = _uniform(rng, max(s_a, vs), min(s_a + d_a, vf) - d_v)
    else:
        s_v = _uniform(rng, max(as_, vs), min(vf - d_v, af - d_a))
        if centred:
            s_a = _clamp(s_v + (d_v - d_a) / 2, d_a, alim)
        else:
            s_a = _uniform(rng, max(s_v, as_), min(s_v + d_v, af) - d_a)
    return s_v, s_a


@dataclass(frozen=True)
class FarApartStarts:
    """Start times of the far-apart family: video views at v1, v2; audio views at a1, a2."""
    v1: float
    a1: float
    v2: float
    a2: float
    short: bool          # True: the release's short-stream branch (streams up to 2 windows long)


def far_apart_starts(vlim: Limits, alim: Limits, d_v: float, d_a: float,
                     rng: np.random.Generator) -> FarApartStarts:
    """Starts of the release's far-apart sampler (docs/deviations.md, "Temporal sampling").

    Streams longer than two windows each (audio > 2·d_a and video > 2·d_v): min_ss = max(as/2, vs/2),
    max_ss = min(af/2 - d_a, max(vf/2 - d_v, 0)); s1 ~ U[min_ss, max_ss]; s2 = s1 + max_ss; video and
    audio share s1 (view 1) and s2 (view 2). A 10 s clip with d_a = 2: s1 in [0, 3], offset 3 s.

    Shorter streams (the release's fallback): audio s_a ~ U[as, af - d_a] for both audio views;
    video v1 ~ U[vs, vf/2 - d_v] drawn independently of the audio, v2 = v1 + vf/2 (the absolute end
    time halved, used as an offset). A stream of exactly 2·d_a (4 s by default) stops the release
    with an error; here it takes this branch, because the long-stream formula would give two
    identical views (offset 0) there.
    """
    (vs, vf), (as_, af) = vlim, alim
    if af - as_ > 2 * d_a and vf - vs > 2 * d_v:
        min_ss = max(as_ / 2, vs / 2)
        max_ss = min(af / 2 - d_a, max(vf / 2 - d_v, 0.0))
        s1 = _uniform(rng, min_ss, max_ss)
        s2 = s1 + max_ss
        return FarApartStarts(s1, s1, s2, s2, short=False)
    s_a = _uniform(rng, as_, af - d_a)
    v1 = _uniform(rng, vs, vf / 2 - d_v)
    return FarApartStarts(v1, s_a, v1 + vf / 2, s_a, short=True)


def sample_views(relation: str, video_limits: Limits, audio_limits: Limits, video_dur: float,
                 audio_dur: float, rng: np.random.Generator, centred: bool = False) -> ViewWindows:
    """Window times for both views under `relation` (one of RELATIONS, docs/method.md §5.2)."""
    vlim, alim, dv, da = tuple(video_limits), tuple(audio_limits), float(video_dur), float(audio_dur)
    if relation == "same_timestamp":
        s_v, s_a = base_snippet(vlim, alim, dv, da, rng, centred)
        w = ViewWindows((s_v, dv), (s_a, da), (s_v, dv), (s_a, da))
    elif relation in ("overlapped", "adjacent"):
        k = 1.5 if relation == "overlapped" else 2.0   # snippet length in view durations
        s_v, s_a = base_snippet(vlim, alim, k * dv, k * da, rng, centred)
        step = (k - 1.0)                                # second view starts (k-1) durations later
        w = ViewWindows((s_v, dv), (s_a, da), (s_v + step * dv, dv), (s_a + step * da, da))
    elif relation == "random":
        s_v1, s_a1 = base_snippet(vlim, alim, dv, da, rng, centred)
        s_v2, s_a2 = base_snippet(vlim, alim, dv, da, rng, centred)
        w = ViewWindows((s_v1, dv), (s_a1, da), (s_v2, dv), (s_a2, da))
    elif relation in ("far_apart", "v_far_a_same", "v_same_a_far"):
        st = far_apart_starts(vlim, alim, dv, da, rng)
        # centred: video in the middle of its audio window (where the views share a start)
        off = (da - dv) / 2 if centred and not st.short else 0.0
        v1 = (_clamp(st.v1 + off, dv, vlim), dv)
        v2 = (_clamp(st.v2 + off, dv, vlim), dv)
        a1 = (_clamp(st.a1, da, alim), da)
        a2 = (_clamp(st.a2, da, alim), da)
        if relation == "far_apart":
            w = ViewWindows(v1, a1, v2, a2)
        elif relation == "v_far_a_same":
            a = a1 if rng.random() < 0.5 else a2
            w = ViewWindows(v1, a, v2, a, share_audio=True)
        else:
            v = v1 if rng.random() < 0.5 else v2
            w = ViewWindows(v, a1, v, a2, share_video=True)
        return w
    else:
        raise ValueError(f"unknown relation {relation!r}; expected one of {RELATIONS}")
    return ViewWindows(*(( _clamp(s, d, lim), d) for (s, d), lim in
                         zip((w.v1, w.a1, w.v2, w.a2), (vlim, alim, vlim, alim))),
                       share_video=w.share_video, share_audio=w.share_audio)


def snippet_windows(relation: str, w: ViewWindows) -> tuple[list, list]:
    """The video / audio windows to decode for `w` (shared views decoded once)."""
    vids = [w.v1] if w.share_video or w.v1 == w.v2 else [w.v1, w.v2]
    auds = [w.a1] if w.share_audio or w.a1 == w.a2 else [w.a1, w.a2]
    return vids, auds


def eval_starts(limits: Limits, dur: float, num_clips: int) -> np.ndarray:
    """Start times of `num_clips` windows of `dur` evenly covering the stream (1 clip: centred)."""
    lo, hi = float(limits[0]), float(limits[1]) - dur
    if hi <= lo:
        return np.full(num_clips, lo)
    if num_clips == 1:
        return np.array([(lo + hi) / 2])
    return np.linspace(lo, hi, num_clips)
