"""viz.plots: the demo's and notebook 00's bar figures speak in % with one decimal, as the README does;
the UMAP scatter gives twelve classes twelve distinct colour/marker pairs."""
import itertools

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402

from crisscross_core.viz import plots  # noqa: E402


def test_bar_labels_are_percent_with_one_decimal():
    fig = plots.grouped_bars({"a→v": {"random init": 0.005, "pretrained": 0.055},
                              "probe": {"random init": 0.175, "pretrained": 0.995}}, "R@1", "t", chance=0.005)
    ax = fig.axes[0]
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == sorted(["0.5", "5.5", "17.5", "99.5"])
    assert ax.get_ylabel() == "R@1 (%)"
    assert any(line.get_label().startswith("chance (0.5%") for line in ax.lines)


def test_umap_scatter_gives_twelve_classes_distinct_styles():
    xy = np.random.default_rng(0).normal(size=(120, 2))
    labels = [f"c{i % 12:02d}" for i in range(120)]
    fig = plots.scatter_2d(xy, labels, "t")
    ax = fig.axes[0]
    styles = set()
    for coll in ax.collections:
        colour = tuple(np.round(coll.get_facecolor()[0], 3))
        path = coll.get_paths()[0]
        styles.add((colour, len(path.vertices)))
    assert len(ax.collections) == 12 and len(styles) == 12
    # classes that share a marker differ clearly in colour (tab20's light/dark pairs were 0.15 apart in RGB)
    for (c1, m1), (c2, m2) in itertools.combinations(styles, 2):
        if m1 == m2:
            assert np.linalg.norm(np.subtract(c1, c2)[:3]) > 0.25
