"""data/builders.folder: labels from class folders when the layout has them, never invented otherwise."""
from pathlib import Path

import pytest

from crisscross_core.data.builders import LayoutError, folder


def _touch(root, *rels):
    for rel in rels:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")


def _labels(entries):
    return {e.path: (e.label, e.label_idx, e.split) for e in entries}


def test_class_folders_give_labels_automatically(tmp_path):
    _touch(tmp_path, "dog/a.mp4", "dog/b.mp4", "cat/c.mp4")
    assert _labels(folder(tmp_path)) == {"cat/c.mp4": ("cat", 0, ""), "dog/a.mp4": ("dog", 1, ""),
                                         "dog/b.mp4": ("dog", 1, "")}


def test_split_and_class_folders_give_labels_and_split_tags(tmp_path):
    _touch(tmp_path, "train/dog/a.mp4", "train/cat/b.mp4", "test/dog/c.mp4", "val/cat/d.mp4")
    got = _labels(folder(tmp_path))
    assert got["train/dog/a.mp4"] == ("dog", 1, "train") and got["val/cat/d.mp4"] == ("cat", 0, "val")
    assert folder(tmp_path, split="all")[0].split == "all"              # an explicit tag wins


@pytest.mark.parametrize("layout", [
    ("a.mp4", "b.mp4"),                            # flat
    ("dog/a.mp4", "c.mp4"),                        # some files outside class folders
    ("2023/05/a.mp4", "2024/01/b.mp4"),            # nested dates, not classes
])
def test_other_layouts_get_no_labels_unless_asked(tmp_path, layout):
    _touch(tmp_path, *layout)
    assert all(e.label == "" and e.label_idx == -1 for e in folder(tmp_path))
    forced = folder(tmp_path, labels="folders")
    assert [e.label for e in forced] == [Path(r).parent.name if "/" in r else "" for r in sorted(layout)]


def test_labels_none_and_bad_mode(tmp_path):
    _touch(tmp_path, "dog/a.mp4", "cat/b.mp4")
    assert all(e.label == "" for e in folder(tmp_path, labels="none"))
    with pytest.raises(LayoutError, match="labels must be one of"):
        folder(tmp_path, labels="maybe")


def test_cli_says_where_the_labels_came_from(tmp_path, capsys):
    """`crisscross manifest build folder` prints the labelling it used (on a real clip)."""
    import shutil
    from shared_paths import SHARED
    clip = SHARED / "clips" / "vas__dog__video_02677.mp4"
    if not clip.is_file():
        pytest.skip("../shared/data/clips absent")
    for cls in ("dog", "cat"):
        (tmp_path / "d" / cls).mkdir(parents=True)
        shutil.copy(clip, tmp_path / "d" / cls / "x.mp4")
    from crisscross_core.cli import main
    assert main(["manifest", "build", "folder", str(tmp_path / "d"), "-o", str(tmp_path / "m.csv"),
                 "--workers", "1", "--threads", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "labels: 2 classes from class folders (cat, dog)" in out
    text = (tmp_path / "m.csv").read_text()
    assert "cat/x.mp4,cat,0" in text and "dog/x.mp4,dog,1" in text
