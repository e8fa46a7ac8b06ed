"""The teacher-logit cache: its fingerprint (``fingerprint``) and its store (``store``).

``from distilqa.distill.cache import TeacherCache, compute_fingerprint`` is the usual entry.
"""

from __future__ import annotations

from distilqa.distill.cache.fingerprint import (
    Fingerprint,
    compute_fingerprint,
    data_component,
    file_sha256,
    teacher_component,
    teacher_files,
    tokenizer_component,
)
from distilqa.distill.cache.store import (
    FORMAT,
    LOGITS_FILE,
    MANIFEST_FILE,
    CacheInvalidError,
    TeacherCache,
    check_logits_file,
    read_manifest,
)

__all__ = [
    "FORMAT",
    "LOGITS_FILE",
    "MANIFEST_FILE",
    "CacheInvalidError",
    "Fingerprint",
    "TeacherCache",
    "check_logits_file",
    "compute_fingerprint",
    "data_component",
    "file_sha256",
    "read_manifest",
    "teacher_component",
    "teacher_files",
    "tokenizer_component",
]
