"""Request and response bodies (the result contract of DESIGN.md, as OpenAPI schemas)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Media(BaseModel):
    """Facts about the file. Recordings also carry ``sample_rate`` (the file's own) and
    ``channels``; videos ``codec``, ``fps``, ``rotation`` and ``has_audio`` (``format``
    is the container, ``width`` and ``height`` as displayed)."""

    model_config = ConfigDict(extra="allow")
    sha256: str | None
    kind: str | None = None
    format: str | None = None
    bytes: int | None = None
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None


class Segment(BaseModel):
    start_s: float = Field(description="in the recording (or the video) as uploaded")
    end_s: float
    score: float


class ModelRef(BaseModel):
    name: str
    version: str


class Crop(BaseModel):
    box: list[int] = Field(description="[x, y, width, height] in the decoded image")
    score: float


class Face(BaseModel):
    box: list[int] = Field(description="[x, y, width, height] in the upright frame")
    score: float


class Frame(BaseModel):
    t: float = Field(description="seconds from the start of the video")
    score: float = Field(description="the frame's most synthetic face (or the whole frame)")
    faces: list[Face]
    whole_frame: bool = Field(description="no face was found: the frame was scored whole")


class Parts(BaseModel):
    visual: float = Field(description="calibrated score of the frames")
    voice: float | None = Field(description="calibrated score of the voice track, if any")


class Timings(BaseModel):
    queue_ms: float | None
    decode_ms: float | None
    model_ms: float | None
    total_ms: float | None


class ErrorInfo(BaseModel):
    code: str | None
    message: str | None


class ScanOut(BaseModel):
    id: str
    status: Literal["queued", "running", "done", "failed", "canceled"]
    filename: str
    batch_id: str | None
    position: int | None
    created_at: str | None
    finished_at: str | None
    media: Media
    verdict: Literal["synthetic", "uncertain", "authentic", "not_applicable"] | None
    score: float | None = Field(description="calibrated probability that the file is synthetic")
    model: ModelRef | None
    crops: list[Crop]
    top_crop: int | None
    segments: list[Segment]
    top_segment: int | None
    frames: list[Frame] = Field(description="video: the timeline of sampled frames")
    top_frame: int | None = Field(description="video: the index of its most synthetic frame")
    parts: Parts | None = Field(description="video: the score of each kind of evidence")
    cached: bool = Field(description="answered from an earlier result for the same content")
    attempts: int
    timings: Timings
    error: ErrorInfo | None


class ScanAccepted(BaseModel):
    id: str
    status: str
    status_url: str


class ScanList(BaseModel):
    scans: list[ScanOut]


class BatchCreate(BaseModel):
    """A server-side batch: a folder or a manifest file under the configured batch roots."""

    model_config = ConfigDict(extra="forbid")
    directory: str | None = None
    manifest: str | None = None


class BatchCounts(BaseModel):
    queued: int
    running: int
    done: int
    failed: int
    canceled: int


class BatchOut(BaseModel):
    id: str
    status: Literal["expanding", "running", "done", "canceled", "failed"]
    source_kind: str
    source: str | None
    total: int
    counts: BatchCounts
    progress: float = Field(description="finished items / items known so far")
    created_at: str
    finished_at: str | None
    error: ErrorInfo | None
    status_url: str
    results_url: str


class ModelOut(BaseModel):
    modality: str
    name: str
    version: str
    threshold: float | None
    uncertain_band: list[float] | None
    metrics: dict[str, Any]
    trained: dict[str, Any]


class ModelVersionOut(BaseModel):
    modality: str
    version: str
    name: str
    status: Literal["candidate", "active", "retired"]
    path: str
    created_at: str | None
    promoted_at: str | None
    retired_at: str | None
    note: str | None = Field(description="the last promotion's reason, or the rollback's")
    forced: bool = Field(description="promoted past a failed or missing evaluation gate")
    shadow: bool = Field(description="scores live scans in shadow (results never returned)")
    previous_version: str | None = Field(description="the version it replaced: a rollback's target")
    gate: dict[str, Any] = Field(description="the evaluation gate: old vs new AUC per generator")


class FakesFolder(BaseModel):
    name: str = Field(description="the generator name the folder's media are filed under")
    path: str = Field(description="a server-side folder under SYNTHGUARD_BATCH_ROOTS")
    family: str = ""


class TrainingRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    modality: Literal["image", "audio", "video"] = "image"
    add_generators: list[str] = Field(default_factory=list, description="registered names")
    fakes: list[FakesFolder] = Field(default_factory=list)
    scratch: bool = False
    preset: Literal["tiny", "default"] = "default"
    train_overrides: dict[str, Any] = Field(default_factory=dict)
    margin: float = Field(0.01, ge=0.0, le=1.0)


class TrainingRunOut(BaseModel):
    id: str
    modality: str
    status: Literal["queued", "running", "done", "failed"]
    request: dict[str, Any]
    progress: dict[str, Any] = Field(description="the last report: stage, done, total, metrics")
    log: list[str]
    run_dir: str | None
    candidate_version: str | None = Field(description="the store version the run made")
    gate: dict[str, Any]
    error: str | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
