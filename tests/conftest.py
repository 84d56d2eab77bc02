from __future__ import annotations

from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def _threads() -> None:
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def starter():
    from generators.sources import starter_source

    return starter_source()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_video_corpus(tmp_path_factory) -> Path:
    """Six real 2 s face clips and their fakes by every built-in video generator."""
    from tests._video import build_tiny_video_corpus

    return build_tiny_video_corpus(tmp_path_factory.mktemp("video") / "corpus")


@pytest.fixture(scope="session")
def tiny_video_model(tmp_path_factory, tiny_video_corpus) -> Path:
    """A video model folder (tiny face model, the shipped voice model) on that corpus."""
    from tests._video import train_tiny_video_model

    return train_tiny_video_model(tiny_video_corpus, tmp_path_factory.mktemp("video_model"))
