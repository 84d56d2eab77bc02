"""Infrastructure settings (broker, database, storage, limits, keys), from ``SYNTHGUARD_*``.

Hyperparameters live in the dataclass configs of ``detector`` and ``generators``; this
class only says where things run and how much they may take.
"""

from __future__ import annotations

import ipaddress
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SYNTHGUARD_", extra="ignore")

    # Where state lives. The SQLite database and the upload store default to here.
    data_dir: Path = Path("synthguard-data")
    database_url: str | None = None  # e.g. postgresql+psycopg://user@host/db; SQLite if unset
    redis_url: str | None = None  # unset: the embedded default runs tasks in-process
    storage_dir: Path | None = None  # uploads by sha256; default data_dir/blobs
    retention_days: float = 30.0  # uploaded bytes older than this are deleted; 0 keeps them

    # The API.
    host: str = "127.0.0.1"
    port: int = 8000
    # None: keys are required unless the server listens on loopback only (the embedded
    # default runs open on localhost, and says so at start).
    require_keys: bool | None = None
    max_upload_bytes: int = 50 * 1024 * 1024  # an uploaded image or recording
    # An uploaded video: streamed to disk (never held in memory) and probed there.
    max_video_upload_bytes: int = 2 * 1024**3
    max_batch_files: int = 10_000  # files in one multipart batch request
    max_batch_request_bytes: int = 2 * 1024**3  # one multipart batch request, all files
    max_batch_items: int = 5_000_000  # items in one server-side batch
    # Server-side batches only under these: SYNTHGUARD_BATCH_ROOTS=/data/a:/data/b (or JSON).
    batch_roots: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    max_wait_s: float = 60.0  # the longest ?wait= a client may ask for

    # Models: a folder per modality; unset uses the model shipped with the package.
    image_model: Path | None = None
    audio_model: Path | None = None  # unset and none shipped: recordings are refused
    video_model: Path | None = None  # unset and none shipped: videos are refused
    # The model store (versions, promotion, rollback); its active version of a modality
    # takes precedence over the settings above. Default: data_dir/models.
    model_store_dir: Path | None = None
    max_audio_seconds: float = 20 * 60.0  # longer recordings are refused (too_long)
    # Longer videos are refused (too_long). Unless set, the task time limits below grow
    # with it: one video is scored in one task (see video_task_seconds).
    max_video_seconds: float = 3 * 3600.0

    # Workers.
    embedded_workers: int = 2  # in-process pool size of the embedded default
    chunk_size: int = 32  # batch items per task: the worker scores them as one micro-batch
    # An interactive scan's task also takes up to this many other waiting uploads and
    # scores them together (they are then skipped when their own messages arrive) ...
    microbatch_max: int = 32
    # ... and, when it found fewer, waits this long once for more (0: take what is there).
    microbatch_wait_ms: float = 0.0
    torch_threads: int = 0  # per worker process; 0: cores / worker processes
    # A scan task's Celery limits. Unset: sized for the longest video allowed (at least
    # 240 s; 720 s with the default 3-hour videos) and the soft limit + 60 s.
    soft_time_limit_s: int = 240
    hard_time_limit_s: int = 300
    # A queued item whose message was lost (a broker restart without persistence) is sent
    # again after this long with its queue empty; a running one after the hard limit.
    redispatch_after_s: float = 30.0
    janitor_interval_s: float = 5.0

    @field_validator("batch_roots", mode="before")
    @classmethod
    def _split_roots(cls, v: object) -> object:
        # Like PATH; a JSON list works too.
        if isinstance(v, str):
            if v.lstrip().startswith("["):
                return json.loads(v)
            return [p for p in v.split(os.pathsep) if p]
        return v

    @model_validator(mode="after")
    def _size_time_limits(self) -> Settings:
        # Explicit values (arguments or SYNTHGUARD_*_TIME_LIMIT_S) are kept as given.
        given = self.model_fields_set
        if "soft_time_limit_s" not in given:
            soft = max(240, video_task_seconds(self.max_video_seconds))
            if "hard_time_limit_s" in given:
                soft = min(soft, max(1, self.hard_time_limit_s * 4 // 5))
            self.soft_time_limit_s = soft
        if "hard_time_limit_s" not in given:
            self.hard_time_limit_s = self.soft_time_limit_s + 60
        return self

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'synthguard.db').resolve()}"

    @property
    def blob_dir(self) -> Path:
        return self.storage_dir or self.data_dir / "blobs"

    @property
    def model_store(self) -> Path:
        return self.model_store_dir or self.data_dir / "models"

    @property
    def embedded(self) -> bool:
        return not self.redis_url

    @property
    def keys_required(self) -> bool:
        if self.require_keys is not None:
            return self.require_keys
        return not _is_loopback(self.host)


# What one video costs a worker, measured on 2 CPU threads: its sampled frames (at most
# 240 whatever the length: seeking, face detection, crops) 9 s at 160x160 and about
# 90 s at 1080p with keyframes 10 s apart (0.13 s of face detection per frame, 0.25 s
# of decoding per seek); 4K has four times the pixels (not measured). The voice track
# (decode and voice model) 0.016 s per second of video.
_VIDEO_FRAMES_S = 180.0
_VIDEO_S_PER_S = 0.05  # the voice track, three times over


def video_task_seconds(max_video_seconds: float) -> int:
    """A time limit under which a worker scores the longest video allowed (a 3-hour
    video: 720 s). A task scores one video at least, and more only while half its soft
    limit is left (``worker.scanning``), so this also bounds a task of many videos."""
    return int(_VIDEO_FRAMES_S + _VIDEO_S_PER_S * max(0.0, max_video_seconds))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
