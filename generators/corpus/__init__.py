"""Labeled corpora: files plus ``manifest.jsonl``, one final encoding for both classes."""

from generators.corpus.audit import encoding_audit
from generators.corpus.builder import BuildReport, CorpusConfig, build_corpus, corpus_info
from generators.corpus.encoding import EncodingConfig
from generators.corpus.fakes import FakesSpec, parse_fakes, recorded_fakes
from generators.corpus.manifest import LABELS, MANIFEST, SPLITS, ManifestRow, read_manifest

__all__ = [
    "LABELS",
    "MANIFEST",
    "SPLITS",
    "BuildReport",
    "CorpusConfig",
    "EncodingConfig",
    "FakesSpec",
    "ManifestRow",
    "build_corpus",
    "corpus_info",
    "encoding_audit",
    "parse_fakes",
    "read_manifest",
    "recorded_fakes",
]
