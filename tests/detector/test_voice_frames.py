"""The voice model's frame head: a logit per 1/32 of a chunk, trained on where the
synthetic part of a spliced clip is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from detector.data.audio import random_chunk, random_start, synthetic_mask, take_chunk
from detector.eval.localisation import overlap_share
from detector.inference import Detector
from detector.inference.clips import frame_timeline
from detector.models.audio import AudioDetector, AudioDetectorConfig, top_quarter_mean
from detector.train.config import AudioTrainConfig
from detector.train.tasks import AudioTask
from tests.detector.conftest import build_tiny_voice_corpus, random_phase, train_tiny_voice_model


def test_synthetic_mask_follows_label_and_segments() -> None:
    assert synthetic_mask(10, 0).tolist() == [0.0] * 10
    assert synthetic_mask(10, 1).tolist() == [1.0] * 10
    mask = synthetic_mask(16_000, 1, [(0.25, 0.5)])
    assert mask.sum() == 4_000 and mask[4_000:8_000].all() and not mask[:4_000].any()


def test_a_chunk_and_its_mask_come_from_the_same_window() -> None:
    y = np.arange(16_000 * 10, dtype=np.float32)
    segments = [(5.0, 6.5)]
    mask = synthetic_mask(len(y), 1, segments)
    for seed in range(20):
        start = random_start(len(y), 64_000, np.random.default_rng(seed), segments)
        chunk, m = take_chunk(y, start, 64_000), take_chunk(mask, start, 64_000)
        assert chunk[0] == start and m.sum() == 1.5 * 16_000  # the whole segment is inside
        assert np.array_equal(chunk[m == 1], np.arange(80_000, 104_000, dtype=np.float32))
        # random_chunk draws the same window from the same generator state
        again = random_chunk(y, 64_000, np.random.default_rng(seed), segments=segments)
        assert np.array_equal(again, chunk)
    short = np.arange(10, dtype=np.float32)  # shorter than a chunk: repeated, mask alike
    assert take_chunk(short, 0, 25).tolist() == [*range(10), *range(10), *range(5)]
    assert take_chunk(synthetic_mask(10, 1, [(0, 2 / 16_000)]), 0, 25).sum() == 6


def test_the_frame_head_gives_a_logit_per_step_and_their_top_quarter() -> None:
    """head="frames": the chunk's logit is the top quarter of its frames'; head="both":
    the backbone's pooled logit, with the frames beside it."""
    model = AudioDetector(AudioDetectorConfig.preset("tiny", head="frames")).eval()
    x = torch.from_numpy(np.random.default_rng(0).normal(0, 0.1, (3, 32_000)).astype("f4"))
    with torch.no_grad():
        frames, chunk = model.frames(x), model(x)
    assert frames.shape == (3, 7)  # 2 s -> 201 spectrogram frames -> 7 after stride 32
    assert torch.allclose(chunk, top_quarter_mean(frames))
    assert torch.allclose(
        top_quarter_mean(torch.tensor([[0.0, 3.0, 1.0, 2.0, 5.0]])), torch.tensor([4.0])
    )
    both = AudioDetector(AudioDetectorConfig.preset("tiny", head="both")).eval()
    with torch.no_grad():
        chunk, frames = both.outputs(x)
        pooled = both.backbone(both.norm(both.frontend(x))).squeeze(1)  # timm's own head
    assert frames is not None and frames.shape == (3, 7)
    assert torch.allclose(chunk, pooled) and torch.allclose(both(x), pooled)
    with pytest.raises(ValueError, match="head"):
        AudioDetector(AudioDetectorConfig.preset("tiny")).frames(x)
    with pytest.raises(ValueError, match="head"):
        AudioDetectorConfig(head="pixels")
    with pytest.raises(ValueError, match="frame_weight"):
        AudioTrainConfig(frame_weight=-1.0)


def test_frame_targets_are_the_synthetic_share_of_each_frame() -> None:
    """The frame loss at the targets a spliced chunk should have is lower than with the
    targets swapped: the loss sees the segment's place, not only the label."""
    cfg = AudioDetectorConfig.preset("tiny", head="frames")
    task = AudioTask(cfg, AudioTrainConfig.preset("tiny", frame_weight=1.0))
    model = AudioDetector(cfg)
    y = np.zeros(32_000, dtype=np.float32)
    ex = task.example(y, _item(1, [(0.0, 1.0)]), np.random.default_rng(0))
    assert (
        ex.synthetic is not None and ex.synthetic[:16_000].all() and not ex.synthetic[16_000:].any()
    )
    n = 7  # frames of a 2 s chunk
    ramp = torch.linspace(6, -6, n)  # high logits early, where the segment is
    assert _frame_loss(task, model, ex, ramp) < _frame_loss(task, model, ex, -ramp)


def _frame_loss(task: AudioTask, model: AudioDetector, ex, frame_logits: torch.Tensor) -> float:
    frames = frame_logits[None]
    original = model.outputs
    model.outputs = lambda _x: (top_quarter_mean(frames), frames)  # type: ignore[method-assign]
    try:
        return float(task.loss(model, [ex], torch.tensor([1.0]), torch.tensor(1.0)))
    finally:
        model.outputs = original  # type: ignore[method-assign]


def _item(label: int, segments):
    from detector.data.corpus import Item

    return Item(
        path=Path("x.wav"),
        label=label,
        split="train",
        generator="g",
        family="g",
        corpus="c",
        source_item=None,
        bytes=0,
        modality="audio",
        segments=tuple(segments) if segments else None,
    )


@pytest.fixture(scope="module")
def frames_model(tmp_path_factory) -> Path:
    corpus = build_tiny_voice_corpus(
        tmp_path_factory.mktemp("spliced_corpus"), n_real=20, splice=True
    )
    return train_tiny_voice_model(
        corpus, tmp_path_factory.mktemp("frames_model"), epochs=12, head="frames"
    )


def test_a_frame_head_model_trains_and_its_frames_find_the_splice(frames_model: Path) -> None:
    """Trained on whole and spliced synthetic clips, the frame logits of a new spliced clip
    are higher inside its synthetic second than in the real speech around it."""
    from tests._audio import speech_like

    det = Detector.load(frames_model)
    card = det.card
    assert card["model_config"]["head"] == "frames"
    assert card["history"][-1]["train_loss"] < card["history"][0]["train_loss"]
    assert card["metrics"]["test"]["per_generator"]["fam_splice"]["auc"] >= 0.8
    real = speech_like(901, 2.0)
    spliced = real.copy()
    spliced[16_000:] = random_phase(real, seed=3)[16_000:] * (np.abs(real[16_000:]).max() / 0.5)
    with torch.no_grad():
        frames = det.model.frames(torch.from_numpy(spliced[None]))[0].numpy()
    n = len(frames)
    assert frames[n // 2 + 1 :].mean() > frames[: n // 2].mean()  # the second half is synthetic
    res_real, res_spliced = det.score([real, spliced])
    assert res_spliced.score > res_real.score
    # The timeline is the frames: about 0.29 s steps over the 2 s, the top one synthetic.
    segs = res_spliced.segments
    assert len(segs) == 7 and all(0.25 < s["end_s"] - s["start_s"] < 0.33 for s in segs)
    assert segs[res_spliced.top_segment]["start_s"] >= 1.0 - 0.3


def test_frame_timeline_averages_overlapping_chunks_on_one_grid() -> None:
    # chunks of 8 samples in 4 frames (2 samples each), every 4 samples over 12 samples
    windows = [(0, 8), (4, 12)]
    logits = np.array([[0.0, 1.0, 2.0, 3.0], [10.0, 11.0, 12.0, 13.0]])
    spans, values = frame_timeline(windows, logits, 12, 8)
    assert spans == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10), (10, 12)]
    assert values == [0.0, 1.0, 6.0, 7.0, 12.0, 13.0]
    # a clip shorter than a chunk was repeated to fill it: the repeat's frames are dropped
    spans, values = frame_timeline([(0, 5)], logits[:1], 5, 8)
    assert spans == [(0, 2), (2, 4), (4, 5)] and values == [0.0, 1.0, 2.0]


def test_overlap_share_of_a_segment() -> None:
    seg = {"start_s": 1.0, "end_s": 2.0}
    assert overlap_share(seg, [(1.5, 3.0)]) == 0.5
    assert overlap_share(seg, [(0.0, 0.5), (1.9, 2.5)]) == pytest.approx(0.1)
    assert overlap_share(seg, [(2.0, 3.0)]) == 0.0


def test_leave_one_out_trains_the_evaluated_models_own_design(
    tmp_path: Path, frames_model: Path
) -> None:
    """The tiny preset's network has the pooled head; the leave-one-out models of a
    frame-head model have frame heads too. The report measures the localisation."""
    import json

    from detector.eval.evaluate import evaluate

    corpus = json.loads((frames_model / "card.json").read_text())["corpora"]
    report = evaluate(
        frames_model,
        corpus,
        tmp_path,
        leave_one_out=True,
        loo_preset="tiny",
        loo_overrides={"epochs": 1, "batch_size": 8},
    )
    assert set(report["leave_one_out"]["held_out_auc"]) == {"fam_mulaw", "fam_phase", "fam_splice"}
    # the spliced test clips' timeline: frames of about 0.29 s, the top one on the splice
    loc = report["localisation"]
    n_spliced = report["per_generator"]["fam_splice"]["n_synthetic"]
    assert loc["n"] == n_spliced and 0.25 < loc["mean_segment_s"] < 0.33
    assert loc["top_hit"] >= 0.5 and loc["segment_auc"] > 0.7
    assert "Localisation on" in (tmp_path / "summary.md").read_text()
    for fam in ("fam_mulaw", "fam_phase", "fam_splice"):
        card = json.loads((tmp_path / "leave_one_out" / fam / "card.json").read_text())
        assert card["model_config"]["head"] == "frames"
