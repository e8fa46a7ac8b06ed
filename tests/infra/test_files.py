"""distilqa.infra.files and distilqa.infra.ownership: atomic and durable writes, and what may be replaced.

Atomic file and folder writes (content, no leftovers, the old version kept on error), fsync of the files, the
folder and the parent, permissions from the umask, the leftovers of a SIGKILLed write cleaned up by the next
write, the ownership marker, the refusal rules and the recognition of distilqa 0.1's outputs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from distilqa.errors import InputError
from distilqa.infra import files
from distilqa.infra.files import (
    atomic_directory,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    clean_leftovers,
    is_temp_name,
    temp_path,
)
from distilqa.infra.ownership import (
    CACHE,
    EVALUATE,
    EXPORT,
    MARKER_FILE,
    MODEL,
    RUN,
    STUDENT,
    check_apart,
    check_output,
    check_replaceable,
    claim_folder,
    read_marker,
    recognise,
    write_marker,
)

REPO = Path(__file__).resolve().parents[2]


def siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


def dead_pid() -> int:
    """The id of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def umask():
    """Set a umask for one test (restored afterwards)."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


@pytest.fixture
def fsynced(monkeypatch):
    """The paths os.fsync was called on (Linux: read back through /proc/self/fd)."""
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name the fsynced descriptors")
    seen: list[str] = []
    real = os.fsync

    def spy(fd):
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return seen


# -- atomic files --------------------------------------------------------------------------------------------


def test_atomic_file_writes_replaces_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "sub" / "out.json"
    atomic_write_json(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    atomic_write_text(target, "new\n")
    assert target.read_text() == "new\n"
    assert siblings(target) == ["out.json"]


def test_atomic_file_keeps_the_old_version_when_the_write_fails(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(
        InputError, match=rf"^no space left on the disk of {tmp_path} .*: {target} was not written"
    ):
        atomic_write_bytes(target, b"new")  # a full disk is the user's to fix: one line naming the folder
    assert target.read_text() == "old" and siblings(target) == ["out.txt"]


def test_atomic_file_fsyncs_the_file_and_the_parent(tmp_path, fsynced):
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"x")
    assert any(Path(p).name.startswith(".out.bin.distilqa-") for p in fsynced), fsynced  # the temporary file
    assert fsynced[-1] == str(tmp_path.resolve())  # after the rename


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002], ids=["022", "027", "002"])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mask):
    umask(mask)
    target = atomic_write_text(tmp_path / "f.txt", "x")
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    with atomic_directory(tmp_path / "folder") as tmp:
        (tmp / "inner.txt").write_text("y")
    assert stat.S_IMODE((tmp_path / "folder").stat().st_mode) == 0o777 & ~mask
    assert stat.S_IMODE((tmp_path / "folder" / "inner.txt").stat().st_mode) == 0o666 & ~mask


# -- atomic folders ------------------------------------------------------------------------------------------


def test_atomic_folder_replaces_the_old_one_whole(tmp_path):
    target = tmp_path / "model"
    with atomic_directory(target, kind=MODEL) as tmp:
        (tmp / "a.txt").write_text("1")
    with atomic_directory(target, kind=MODEL) as tmp:
        (tmp / "b.txt").write_text("2")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "c.txt").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == [MARKER_FILE, "b.txt", "sub"]
    assert read_marker(target)["files"] == ["b.txt", "sub/c.txt"]
    assert read_marker(target)["kind"] == MODEL and read_marker(target)["made_by"] == "distilqa"
    assert siblings(target) == ["model"]


def test_atomic_folder_without_rename_exchange_uses_two_renames(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "_exchange", lambda a, b: False)
    target = tmp_path / "model"
    for text in ("old", "new"):
        with atomic_directory(target, kind=MODEL) as tmp:
            (tmp / "a.txt").write_text(text)
    assert (target / "a.txt").read_text() == "new" and siblings(target) == ["model"]


def test_atomic_folder_is_removed_on_error_and_the_old_one_kept(tmp_path):
    target = tmp_path / "model"
    with atomic_directory(target, kind=MODEL) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_directory(target, kind=MODEL) as tmp:
        (tmp / "a.txt").write_text("half")
        raise RuntimeError("killed half-way")
    assert (target / "a.txt").read_text() == "old" and siblings(target) == ["model"]


def test_atomic_folder_fsyncs_every_file_the_folder_and_the_parent(tmp_path, fsynced):
    target = tmp_path / "cache"
    with atomic_directory(target, kind=CACHE) as tmp:
        (tmp / "a.npy").write_bytes(b"a")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b.json").write_text("{}")
        temp = tmp.resolve()
    synced = [Path(p) for p in fsynced]
    for name in ("a.npy", "sub/b.json", MARKER_FILE, "sub"):
        assert temp / name in synced, name
    assert temp in synced and synced.index(temp) < len(synced) - 1  # the folder before the rename ...
    assert synced[-1] == tmp_path.resolve()  # ... the parent after it


def test_atomic_folder_refuses_what_distilqa_did_not_make(tmp_path):
    user = tmp_path / "runs"
    user.mkdir()
    (user / "precious.txt").write_text("mine")
    with pytest.raises(InputError, match=r"runs is a folder distilqa did not make \(it holds precious.txt\)"):
        with atomic_directory(user, kind=CACHE):
            raise AssertionError("the body must not run")
    a_file = tmp_path / "train.json"
    a_file.write_text("[]")
    with pytest.raises(InputError, match="is a file, not a folder"), atomic_directory(a_file, kind=CACHE):
        pass
    assert (user / "precious.txt").read_text() == "mine" and a_file.read_text() == "[]"


def test_atomic_folder_refuses_a_file_put_in_meanwhile(tmp_path):
    """Checked again right before the rename: a long build does not overwrite what appeared during it."""
    target = tmp_path / "cache"
    with pytest.raises(InputError, match="did not make"), atomic_directory(target, kind=CACHE) as tmp:
        (tmp / "logits.npy").write_bytes(b"x")
        target.mkdir()
        (target / "precious.txt").write_text("mine")
    assert (target / "precious.txt").read_text() == "mine" and siblings(target) == ["cache"]


def test_replaceable_rules(tmp_path):
    assert check_replaceable(tmp_path / "new", MODEL) == tmp_path / "new"  # missing
    (tmp_path / "empty").mkdir()
    check_replaceable(tmp_path / "empty", MODEL)
    with atomic_directory(tmp_path / "model", kind=MODEL) as tmp:
        (tmp / "config.json").write_text("{}")
    check_replaceable(tmp_path / "model", MODEL)  # distilqa's own, of that kind
    with pytest.raises(InputError, match="is distilqa's model folder, not a teacher cache"):
        check_replaceable(tmp_path / "model", CACHE)
    (tmp_path / "model" / "precious.txt").write_text("mine")
    with pytest.raises(InputError, match=r"holds files distilqa did not write \(precious.txt\)"):
        check_replaceable(tmp_path / "model", MODEL)
    (tmp_path / "link").symlink_to(tmp_path / "model")
    with pytest.raises(InputError, match="precious.txt"):
        check_replaceable(tmp_path / "link", MODEL)
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / MARKER_FILE).write_text('{"made_by": "someone", "kind": "model"}')
    (tmp_path / "fake" / "x").write_text("")
    with pytest.raises(InputError, match="did not make"):
        check_replaceable(tmp_path / "fake", MODEL)


def test_claim_folder_marks_a_new_or_empty_folder_only(tmp_path):
    run = claim_folder(tmp_path / "a" / "run", RUN)
    assert read_marker(run)["kind"] == RUN and "files" not in read_marker(run)
    (run / "metrics.json").write_text("{}")
    claim_folder(run, RUN)  # its own again: fine
    with pytest.raises(
        InputError, match="is distilqa's train/distill run folder, not an evaluate output folder"
    ):
        claim_folder(run, EVALUATE)
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "precious.txt").write_text("mine")
    with pytest.raises(InputError, match="did not make"):
        claim_folder(tmp_path / "user", EVALUATE)
    assert read_marker(tmp_path / "user") is None


def test_write_marker_kinds():
    with pytest.raises(ValueError, match="unknown output kind"):
        write_marker(".", "bogus")


# -- inputs are never outputs --------------------------------------------------------------------------------


def test_check_apart(tmp_path):
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    data = tmp_path / "train.json"
    data.write_text("[]")
    inputs = {"teacher": teacher, "--data file": data, "model": "bert-base-uncased"}  # a hub name is skipped
    check_apart(tmp_path / "out", "--output", inputs)
    for output, words in [
        (data, "is the --data file"),
        (teacher, "is the teacher folder"),
        (teacher / "sub" / "x", "is inside the teacher folder"),
        (tmp_path, "holds the teacher"),
    ]:
        with pytest.raises(InputError, match=words):
            check_apart(output, "--output", inputs)
    (tmp_path / "link").symlink_to(teacher)
    with pytest.raises(InputError, match="is the teacher folder"):
        check_apart(tmp_path / "link", "--output", inputs)
    with pytest.raises(InputError, match="holds the output_dir"):  # planned outputs need not exist
        check_apart(
            tmp_path / "runs", "teacher_cache", {}, planned={"output_dir": tmp_path / "runs" / "s" / "model"}
        )
    check_apart(
        tmp_path / "runs" / "cache", "teacher_cache", {}, planned={"output_dir": tmp_path / "runs" / "model"}
    )


def test_check_output_of_a_file_may_replace_a_file_never_an_input(tmp_path):
    data = tmp_path / "data.json"
    data.write_text("[]")
    old = tmp_path / "old.json"
    old.write_text("{}")
    assert check_output(old, None, "--output", {"--data file": data}) == old
    with pytest.raises(InputError, match="is the --data file"):
        check_output(data, None, "--output", {"--data file": data})
    with pytest.raises(InputError, match="is a folder"):
        check_output(tmp_path, None, "--output")


# -- what a killed write leaves behind -----------------------------------------------------------------------


def test_leftovers_of_dead_processes_are_removed_by_the_next_write(tmp_path):
    target = tmp_path / "metrics.json"
    pid = dead_pid()
    dead_file = tmp_path / f".metrics.json.distilqa-{pid}-0badcafe.tmp"
    dead_file.write_text("half")
    dead_folder = tmp_path / f".metrics.json.distilqa-{pid}-deadbeef.tmp"
    dead_folder.mkdir()
    (dead_folder / "x").write_text("half")
    legacy = tmp_path / ".metrics.json.k2j4_9ab.tmp"  # distilqa 0.1's tempfile name
    legacy.write_text("half")
    alive = tmp_path / f".metrics.json.distilqa-{os.getppid()}-12345678.tmp"  # a running process's write
    alive.write_text("busy")
    other = [tmp_path / ".metrics.json.notes", tmp_path / f".other.json.distilqa-{pid}-0badcafe.tmp"]
    for path in other:
        path.write_text("not ours to remove")
    atomic_write_json(target, {"a": 1})
    assert not dead_file.exists() and not dead_folder.exists() and not legacy.exists()
    assert alive.exists() and all(p.read_text() == "not ours to remove" for p in other)
    assert all(is_temp_name(p.name) for p in (dead_file, dead_folder, legacy, alive))
    assert not is_temp_name(".metrics.json.notes") and not is_temp_name("precious.txt")


def test_a_parked_old_folder_comes_back_when_the_target_is_missing(tmp_path):
    """A kill between the two renames of the fallback replace: the next write restores the old version first."""
    target = tmp_path / "model"
    parked = tmp_path / f".model.distilqa-old-{dead_pid()}"
    parked.mkdir()
    (parked / "a.txt").write_text("old")
    assert clean_leftovers(target) == []
    assert (target / "a.txt").read_text() == "old" and siblings(target) == ["model"]
    parked.mkdir()  # and a parked folder beside a present target is the superseded version: removed
    assert clean_leftovers(target) == [parked] and not parked.exists()


def test_sigkill_during_a_folder_write_is_cleaned_up_by_the_next_one(tmp_path):
    target = tmp_path / "cache"
    with atomic_directory(target, kind=CACHE) as tmp:
        (tmp / "logits.npy").write_bytes(b"old")
    script = textwrap.dedent(
        f"""
        import os, signal
        from distilqa.infra.files import atomic_directory, atomic_write_text
        with atomic_directory({str(target)!r}, kind="teacher-cache") as tmp:
            (tmp / "logits.npy").write_bytes(b"half")
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    leftovers = [n for n in siblings(target) if n != "cache"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".cache.distilqa-"), leftovers
    assert (target / "logits.npy").read_bytes() == b"old"  # the old version is intact
    with atomic_directory(target, kind=CACHE) as tmp:
        (tmp / "logits.npy").write_bytes(b"new")
    assert siblings(target) == ["cache"] and (target / "logits.npy").read_bytes() == b"new"


def test_temp_names_sit_beside_the_target(tmp_path):
    name = temp_path(tmp_path / "model").name
    assert name.startswith(f".model.distilqa-{os.getpid()}-") and name.endswith(".tmp") and is_temp_name(name)


# -- distilqa 0.1's outputs (no marker) ----------------------------------------------------------------------


def card(folder: Path) -> None:
    from distilqa.infra.cards import write_model_card

    write_model_card(folder, title="t", base_models={}, data={}, hyperparameters={})


def test_outputs_of_distilqa_0_1_are_recognised_by_their_files(tmp_path):
    from distilqa.distill.cache.store import FORMAT

    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "manifest.json").write_text(json.dumps({"format": FORMAT}))
    (cache / "logits.npy").write_bytes(b"")
    model = tmp_path / "run" / "model"
    model.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "vocab.txt"):
        (model / name).write_text("{}")
    card(model)
    student = Path(shutil.copytree(model, tmp_path / "student"))
    (student / "distilqa_student.json").write_text("{}")
    export = Path(shutil.copytree(model, tmp_path / "export"))
    (export / "distilqa_export.json").write_text("{}")
    (export / "model.onnx").write_bytes(b"")
    (tmp_path / "run" / "metrics.json").write_text("{}")
    evaluate = tmp_path / "eval"
    evaluate.mkdir()
    (evaluate / "metrics.json").write_text(json.dumps({"num_questions": 2, "backend": "torch", "f1": 1.0}))
    (evaluate / "predictions.json").write_text("{}")
    found = {p.name: recognise(p) for p in (cache, model, student, export, tmp_path / "run", evaluate)}
    assert found == {
        "cache": CACHE,
        "model": MODEL,
        "student": STUDENT,
        "export": EXPORT,
        "run": RUN,
        "eval": EVALUATE,
    }
    # ... and not when they hold anything else, or lack distilqa's own file.
    (model / "precious.txt").write_text("mine")
    (cache / "precious.txt").write_text("mine")
    (evaluate / "precious.txt").write_text("mine")
    assert recognise(model) is None and recognise(cache) is None and recognise(evaluate) is None
    assert recognise(tmp_path / "run") is None  # its model/ is no longer distilqa's: nor is the run folder
    (student / "README.md").unlink()
    (student / "distilqa_student.json").unlink()
    assert recognise(student) is None


def test_the_recognisers_use_the_names_distilqa_writes(tmp_path):
    from distilqa.distill.cache.store import FORMAT
    from distilqa.infra import ownership
    from distilqa.infra.cards import TAGS
    from distilqa.infra.checkpoints import COMPLETE_MARKER

    assert ownership.CACHE_FORMAT == FORMAT and ownership.CHECKPOINT_COMPLETE == COMPLETE_MARKER
    assert "distilqa" in TAGS
    (tmp_path / "config.json").write_text("{}")
    card(tmp_path)
    assert ownership.CARD_TAG in (tmp_path / "README.md").read_text()
