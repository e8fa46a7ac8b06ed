"""Cached teacher logits: run the teacher once over the training windows, then distill from a memory map.

The teacher's (start, end) logits of every training window are stored in one ``logits.npy`` array of shape
``(rows, 2, max_seq_length)``, float16, next to a ``manifest.json``::

    CACHE_DIR/
      logits.npy       float16 (rows, 2 [start, end], max_seq_length), row i = training feature i
      manifest.json    fingerprint and its components, shape, byte size and sha256 of logits.npy

Design choices:

* **Full ``max_seq_length`` per row, not each window's real length.** The distillation loss takes the softmax
  over every position, padding included (BERT-style QA heads do not mask padding), so the padded positions'
  logits are part of the loss and must be stored to reproduce it. Fixed-length rows also make a batch lookup
  one gather from the memory map, with no offset table. At full SQuAD v1.1 scale (88k windows of 384 tokens)
  this is 135 MB.
* **float16 storage** halves the size of float32 and rounds a logit ``x`` to within ``|x| * 2**-11``; the
  per-step losses from the cache match the online teacher's to ~1e-7 relative (``tests/test_teacher_cache.py``).
  A bfloat16 teacher loses nothing: its values have fewer mantissa bits than float16 and fit its range.
* **A raw ``.npy`` read with** ``np.load(mmap_mode="r", allow_pickle=False)``: no pickle, and each process
  (DDP ranks included) reads only the rows of its own batches through :meth:`TeacherCache.lookup`, with the
  pages shared through the OS page cache. Shuffling, several epochs, gradient accumulation and resuming work
  because rows are addressed by the ``feature_index`` column, not by order.
* **Keyed by a fingerprint** (sha256) of everything that determines the logits: the teacher's weight files and
  config, the tokenizer (:func:`distilqa.infra.models.tokenizer_signature`), the windowing parameters, the token ids
  of the windows themselves and the teacher dtype. A cache whose fingerprint differs is rebuilt by
  :meth:`TeacherCache.load_or_build` (saying which component changed) and refused by :meth:`TeacherCache.load`.
* **Written atomically** (:func:`distilqa.infra.files.atomic_directory`); on load the file's size and sha256 are
  checked against the manifest, so a torn or edited cache is never used.

Example::

    >>> cache = TeacherCache.load_or_build("runs/cache", "runs/teacher", tokenizer, train_features, config)
    >>> start, end = cache.lookup(torch.tensor([0, 5, 2]))   # float16, (3, max_seq_length) each
"""

from __future__ import annotations

import gc
import json
import logging
import os
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from distilqa.distill.cache.fingerprint import DATA_COLUMNS, Fingerprint, compute_fingerprint, file_sha256
from distilqa.errors import InputError
from distilqa.infra.files import atomic_directory, atomic_write_json
from distilqa.infra.ownership import CACHE, check_output, check_replaceable

logger = logging.getLogger(__name__)

FORMAT = "distilqa-teacher-cache"


VERSION = 1


LOGITS_FILE = "logits.npy"


MANIFEST_FILE = "manifest.json"


STORAGE_DTYPE = np.float16


# Spot-check tolerance, relative to the logit scale max(1, max |logit|) of the checked rows. float16 storage
# rounds to 2**-11 (5e-4) of that scale and an fp32 recomputation in another batch differs by ~1e-6, so 1e-2
# is 20x the storage error; a wrong teacher or other data is off by the order of the scale itself. A half-
# precision teacher recomputed on another device or batch can differ by a few of its own ulps (2**-8 for bf16).
SPOT_CHECK_TOLERANCE = {"float32": 1e-2, "float16": 5e-2, "bfloat16": 5e-2}


class CacheInvalidError(InputError):
    """The cache folder cannot be used: missing, torn (size / sha256 / shape mismatch) or stale (fingerprint).

    ``reason`` says what is wrong; the message adds the fix.
    """

    def __init__(
        self, reason: str, fix: str = "rebuild it with 'distilqa cache-teacher' (or delete the folder)"
    ):
        super().__init__(f"{reason}; {fix}")
        self.reason = reason


class TeacherCache:
    """Read access to a cache folder: :meth:`lookup` rows by feature index. Build or open it with the classmethods.

    Args:
        path: the cache folder.
        manifest (`dict`): its parsed ``manifest.json`` (checked by :meth:`load`).
    """

    def __init__(self, path: str | os.PathLike, manifest: dict[str, Any]):
        self.path = Path(path)
        self.manifest = manifest
        self.built = False  # True when load_or_build had to build it
        self._array = None

    # The memory map is opened lazily in each process (and dropped when pickled), so forked or spawned
    # workers and DDP ranks each map the file themselves.
    def __getstate__(self):
        return {**self.__dict__, "_array": None}

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            self._array = np.load(self.path / LOGITS_FILE, mmap_mode="r", allow_pickle=False)
        return self._array

    @property
    def fingerprint(self) -> str:
        return self.manifest["fingerprint"]

    @property
    def seq_len(self) -> int:
        return int(self.manifest["shape"][2])

    @property
    def size_mb(self) -> float:
        return round(sum(p.stat().st_size for p in self.path.iterdir() if p.is_file()) / 1e6, 2)

    def __len__(self) -> int:
        return int(self.manifest["shape"][0])

    def __repr__(self) -> str:
        return f"TeacherCache({str(self.path)!r}, rows={len(self)}, seq_len={self.seq_len}, fingerprint={self.fingerprint[:12]})"

    def lookup(self, feature_index) -> tuple[Any, Any]:
        """The cached (start, end) logits of the given training features.

        Args:
            feature_index (`torch.LongTensor` or array of shape (batch,)): row numbers of the training features.

        Returns:
            `tuple[torch.Tensor, torch.Tensor]`: start and end logits, each (batch, seq_len), float16, on the CPU.
        """
        import torch

        index = torch.as_tensor(feature_index).cpu().numpy().astype(np.int64, copy=False).reshape(-1)
        if index.size and (index.min() < 0 or index.max() >= len(self)):
            raise InputError(
                f"feature_index {int(index.max() if index.max() >= len(self) else index.min())} is outside the teacher cache "
                f"{self.path} ({len(self)} rows): the cache was built for other training features; rebuild it"
            )
        rows = torch.from_numpy(self.array[index])  # one gather from the memory map: (batch, 2, seq_len)
        return rows[:, 0], rows[:, 1]

    # -- opening --------------------------------------------------------------------------------------------

    @classmethod
    def load(
        cls, path: str | os.PathLike, expected_fingerprint: Fingerprint | str | None = None
    ) -> TeacherCache:
        """Open a cache folder after checking its manifest, its fingerprint and the logits file's size and sha256.

        Args:
            path: the cache folder.
            expected_fingerprint (:class:`Fingerprint` or `str`, *optional*): refuse a cache built for other
                inputs (a :class:`Fingerprint` lets the error name the components that differ).

        Raises:
            CacheInvalidError: the folder is missing, torn or stale; the message says what to do.
        """
        path = Path(path)
        manifest = read_manifest(path)
        expected = expected_fingerprint
        if isinstance(expected, Fingerprint) and manifest["fingerprint"] != expected.digest:
            changed = "; ".join(expected.changes(manifest.get("components", {})))
        elif isinstance(expected, str) and manifest["fingerprint"] != expected:
            changed = f"fingerprint {manifest['fingerprint'][:12]} -> {expected[:12]}"
        else:
            changed = None
        if changed:
            raise CacheInvalidError(
                f"teacher cache {path} was built for other inputs: {changed} changed",
                "rebuild it with 'distilqa cache-teacher' for these inputs, or give --teacher_cache a new folder",
            )
        check_logits_file(path, manifest)
        return cls(path, manifest)

    @classmethod
    def build(
        cls,
        path,
        teacher,
        tokenizer,
        train_features,
        config,
        fingerprint=None,
        trust_remote_code: bool = False,
        projector=None,
    ) -> TeacherCache:
        """Run the teacher over ``train_features`` and write the cache folder atomically (replacing any old one).

        Args:
            path: the cache folder.
            teacher (`str`): the fine-tuned QA teacher (folder or hub name).
            tokenizer: the tokenizer that built ``train_features`` (part of the fingerprint).
            train_features (`datasets.Dataset`): training windows, padded to ``max_seq_length``.
            config (:class:`distilqa.distill.config.DistillationConfig`): ``feature_params``, ``teacher_dtype``,
                ``per_device_eval_batch_size`` (the build's batch size) and ``device``.
            fingerprint (:class:`Fingerprint`, *optional*): computed from the inputs when not given.
            trust_remote_code (`bool`, defaults to `False`): allow custom modelling code from the teacher.
            projector (:class:`distilqa.distill.projection.SpanProjector`, *optional*): the teacher tokenizes
                differently; the rows then hold its logits projected onto the student's windows.
        """
        from tqdm.auto import tqdm

        check_replaceable(
            path, CACHE, "teacher cache"
        )  # before the teacher is loaded; checked again at the end
        began = time.perf_counter()
        fingerprint = fingerprint or compute_fingerprint(
            teacher, tokenizer, train_features, config.feature_params, config.teacher_dtype, projector
        )
        rows, seq_len = len(train_features), fingerprint.components["data"]["seq_len"]
        batch_size = max(1, int(config.per_device_eval_batch_size))
        run = _TeacherRunner(teacher, train_features, config, trust_remote_code, projector)
        scale = 0.0
        try:
            with atomic_directory(path, kind=CACHE, what="teacher cache") as tmp:
                shape = (rows, 2, seq_len)
                out = np.lib.format.open_memmap(
                    tmp / LOGITS_FILE, mode="w+", dtype=STORAGE_DTYPE, shape=shape
                )
                for start in tqdm(range(0, rows, batch_size), desc="Caching teacher logits", unit="batch"):
                    logits = run(slice(start, start + batch_size))
                    top = float(logits.abs().max())
                    if not np.isfinite(top) or top > np.finfo(STORAGE_DTYPE).max:
                        raise InputError(
                            f"teacher {teacher} gives logits of magnitude {top:g} on training rows {start}.., "
                            "beyond float16: check the teacher, or run it with --teacher_dtype float32"
                        )
                    scale = max(scale, top)
                    out[start : start + len(logits)] = logits.numpy().astype(STORAGE_DTYPE)
                out.flush()
                del out
                manifest = {
                    "format": FORMAT,
                    "version": VERSION,
                    "fingerprint": fingerprint.digest,
                    "components": fingerprint.components,
                    "teacher": str(teacher),
                    "file": LOGITS_FILE,
                    "shape": list(shape),
                    "layout": "rows x [start, end] x positions",
                    "dtype": np.dtype(STORAGE_DTYPE).name,
                    "bytes": (tmp / LOGITS_FILE).stat().st_size,
                    "sha256": file_sha256(tmp / LOGITS_FILE),
                    "logit_scale": round(scale, 4),
                    "build_seconds": round(time.perf_counter() - began, 2),
                    "build_device": str(run.device),
                    "build_batch_size": batch_size,
                }
                atomic_write_json(tmp / MANIFEST_FILE, manifest)
        finally:
            run.free()  # the teacher is not needed once its logits are on disk
        cache = cls(path, manifest)
        cache.built = True
        return cache

    @classmethod
    def load_or_build(
        cls, path, teacher, tokenizer, train_features, config, trust_remote_code: bool = False, projector=None
    ) -> TeacherCache:
        """The cache for these inputs: opened (and spot-checked) when valid, else (re)built with a message why.

        In distributed training the main process goes first (per node when ``config.save_on_each_node``, i.e.
        when the nodes do not share a file system), so one process builds and the others then open its result.
        """
        first = getattr(config, "main_process_first", None)
        context = (
            first(local=bool(config.save_on_each_node), desc="teacher cache") if first else nullcontext()
        )
        with context:
            params, dtype = config.feature_params, config.teacher_dtype
            fingerprint = compute_fingerprint(teacher, tokenizer, train_features, params, dtype, projector)
            try:
                cache = cls.load(path, fingerprint)
            except CacheInvalidError as err:
                logger.info("Building the teacher cache: %s", err.reason)
                return cls.build(
                    path,
                    teacher,
                    tokenizer,
                    train_features,
                    config,
                    fingerprint,
                    trust_remote_code,
                    projector,
                )
            logger.info(
                "Teacher cache %s: valid (%s rows, fingerprint %s)",
                path,
                f"{len(cache):,}",
                cache.fingerprint[:12],
            )
            if config.cache_spot_check > 0 and getattr(config, "process_index", 0) == 0:
                cache.spot_check(teacher, train_features, config, trust_remote_code, projector)
            return cache

    def spot_check(
        self, teacher, train_features, config, trust_remote_code: bool = False, projector=None
    ) -> float:
        """Recompute ``config.cache_spot_check`` rows (chosen with ``config.seed``) with the live teacher.

        Returns:
            `float`: the max |cached - live| logit difference (printed).

        Raises:
            InputError: when it exceeds :data:`SPOT_CHECK_TOLERANCE` times the logit scale of those rows.
        """
        import torch

        count = min(int(config.cache_spot_check), len(self))
        if count <= 0:
            return 0.0
        rows = np.sort(np.random.default_rng(config.seed).choice(len(self), size=count, replace=False))
        run = _TeacherRunner(teacher, train_features, config, trust_remote_code, projector)
        live = run(rows.tolist())
        run.free()
        cached = torch.from_numpy(self.array[rows]).float()
        diff = float((live - cached).abs().max())
        tolerance = SPOT_CHECK_TOLERANCE[config.teacher_dtype] * max(1.0, float(cached.abs().max()))
        logger.info(
            "Teacher cache spot check: %d rows, max |cached - live| = %.2e (tolerance %.2e)",
            count,
            diff,
            tolerance,
        )
        if diff > tolerance:
            raise InputError(
                f"teacher cache {self.path} does not match the live teacher {teacher} (max logit difference "
                f"{diff:.3g} > {tolerance:.3g} on rows {rows.tolist()}); delete the folder to rebuild it"
            )
        return diff


def check_cache_output(path, what: str, inputs: dict) -> None:
    """Refuse a cache folder that distilqa may not (re)build: a file, a folder that is not a teacher cache (a
    user's, a model's), or one that is, is inside or holds an input (``inputs``: label -> path). Creates nothing."""
    check_output(path, CACHE, what, inputs)


class _TeacherRunner:
    """The teacher in eval mode on ``config.device`` in ``config.teacher_dtype``, as the online teacher runs.

    ``runner(rows)`` gives the (len(rows), 2, seq_len) float32 CPU logits of those training rows.
    """

    def __init__(self, teacher, train_features, config, trust_remote_code: bool, projector=None):
        import torch

        from distilqa.distill.trainer import forward_inputs
        from distilqa.infra.models import load_qa_model

        model = load_qa_model(teacher, require_qa_head=True, trust_remote_code=trust_remote_code)
        self.device = torch.device(config.device)
        self.model = model.to(device=self.device, dtype=getattr(torch, config.teacher_dtype)).eval()
        names = [c for c in DATA_COLUMNS if c in train_features.column_names and c in forward_inputs(model)]
        self.data = train_features.with_format("torch", columns=names)
        self.projected = None
        if (
            projector is not None
        ):  # another tokenizer: the teacher reads its own windows, projected onto these
            from distilqa.distill.projection import ProjectedTeacher

            batch = max(1, int(config.per_device_eval_batch_size))
            self.projected = ProjectedTeacher(self.model, projector, forward_inputs(model), batch)

    def __call__(self, rows):
        import torch

        if self.projected is not None:
            index = np.arange(len(self.data))[rows] if isinstance(rows, slice) else rows
            return self.projected(index)
        with torch.inference_mode():
            out = self.model(**{k: v.to(self.device) for k, v in self.data[rows].items()})
            return torch.stack([out.start_logits, out.end_logits], dim=1).float().cpu()

    def free(self) -> None:
        import torch

        self.model = None
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def read_manifest(path: Path) -> dict[str, Any]:
    if not path.is_dir():
        raise CacheInvalidError(
            f"teacher cache {path} does not exist", "build it with 'distilqa cache-teacher'"
        )
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CacheInvalidError(
            f"teacher cache {path} has no {MANIFEST_FILE} (torn, or not a cache)"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CacheInvalidError(f"teacher cache {path}/{MANIFEST_FILE} cannot be read ({err})") from None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or manifest.get("version") != VERSION
    ):
        raise CacheInvalidError(f"teacher cache {path}/{MANIFEST_FILE} is not a {FORMAT} v{VERSION} manifest")
    return manifest


def check_logits_file(path: Path, manifest: dict[str, Any]) -> None:
    """Size, sha256, dtype and shape of ``logits.npy`` against the manifest (a torn cache fails here)."""
    file = path / LOGITS_FILE
    if not file.is_file():
        raise CacheInvalidError(f"teacher cache {path} has no {LOGITS_FILE} (torn)")
    size = file.stat().st_size
    if size != manifest.get("bytes"):
        raise CacheInvalidError(
            f"teacher cache {file} has {size:,} bytes, the manifest says {manifest.get('bytes'):,} (torn)"
        )
    if file_sha256(file) != manifest.get("sha256"):
        raise CacheInvalidError(
            f"teacher cache {file} does not match the sha256 in its manifest (changed or torn)"
        )
    array = np.load(file, mmap_mode="r", allow_pickle=False)
    if list(array.shape) != list(manifest.get("shape", [])) or array.dtype != STORAGE_DTYPE:
        raise CacheInvalidError(
            f"teacher cache {file} holds {array.dtype}{list(array.shape)}, not the manifest's {manifest.get('shape')}"
        )
