"""Shared fixtures: a small copy of the embedded demo dataset (real mp4 files) and the shared data."""
from pathlib import Path

import pytest

from shared_paths import SHARED


@pytest.fixture(scope="session")
def demo_manifest(tmp_path_factory) -> Path:
    """32 train + 8 test demo clips (4 s, 48 px, the demo's 12 classes), written once per test session."""
    from crisscross_core.data.synthetic import make_demo_dataset
    return make_demo_dataset(tmp_path_factory.mktemp("demo"), n_train=32, n_test=8, seed=0, workers=2)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared test media not found at {SHARED}")
    return SHARED
