"""Tidy results store: one row per measurement, Parquet under ``results/<suite>/<model>.parquet``.

A plugin run is a *unit* identified by a hash of everything that determines its numbers; rows are deduplicated on
(unit, metric), so re-running a finished unit is a no-op. Per-example outcomes of a unit go to
``results/<suite>/<model>/<plugin>-<unit>.examples.parquet``; while a unit runs, its finished batches are kept under
``results/.work/`` so that a killed run resumes batch by batch.

Concurrency and crashes: every file is written atomically (temporary file, fsync, rename, fsync of the folder), so a
reader or a run killed at any instant (``kill -9``) sees the old file or the new one, never a mix. Every
read-modify-write of a table holds the table's lock, and a unit is computed only by the process that holds its
claim (``results/.work/locks/``): OS file locks (``filelock``), released by the OS when their holder dies.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock

from bench.exceptions import RIBenchError
from bench.paths import default_results_root

ROW_COLUMNS = [
    "model",
    "model_sha256",
    "dataset",
    "split",
    "n",
    "suite",
    "plugin",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "ci_method",
    "params",
    "params_hash",
    "seed",
    "precision",
    "unit",
    "package_version",
    "git_commit",
    "torch_version",
    "device",
    "threads",
    "wall_seconds",
    "timestamp",
    "command",
]
UNIT_KEYS = ("model", "model_sha256", "dataset", "split", "n", "suite", "plugin", "params_hash", "seed", "precision")
UNIT_FIELDS = ("model", "model_sha256", "dataset", "split", "n", "suite", "plugin", "params", "seed", "precision")


def results_root(out: str | os.PathLike | None = None) -> Path:
    """``out``, else ``RIBENCH_RESULTS``, else ``./results`` (inside the clone: the clone's ``results/``)."""
    return Path(out or os.environ.get("RIBENCH_RESULTS") or default_results_root())


def canonical_json(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)


def short_hash(text: str, length: int = 12) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@dataclass(frozen=True)
class UnitKey:
    """Everything that determines a plugin run's numbers."""

    model: str
    model_sha256: str
    dataset: str
    split: str
    n: int
    suite: str
    plugin: str
    params: str  # canonical JSON
    seed: int
    precision: str

    @property
    def params_hash(self) -> str:
        return short_hash(self.params)

    @property
    def unit(self) -> str:
        fields = [str(getattr(self, k)) for k in UNIT_KEYS if k != "params_hash"] + [self.params_hash]
        return short_hash("|".join(fields), 16)

    def columns(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_sha256": self.model_sha256,
            "dataset": self.dataset,
            "split": self.split,
            "n": self.n,
            "suite": self.suite,
            "plugin": self.plugin,
            "params": self.params,
            "params_hash": self.params_hash,
            "seed": self.seed,
            "precision": self.precision,
            "unit": self.unit,
        }


def _unit_key(row: pd.Series) -> UnitKey:
    fields = {k: row[k] for k in UNIT_FIELDS}
    return UnitKey(**{**fields, "n": int(fields["n"]), "seed": int(fields["seed"])})


COMPUTE_SECONDS = "compute_seconds"  # examples.attrs: the unit's summed batch seconds, kept for a rebuild of its rows
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}


class DamagedTableError(RIBenchError, RuntimeError):
    """A results Parquet file that cannot be read; the message names it and how to rebuild it."""


class OutputError(RIBenchError, RuntimeError):
    """The results folder cannot be written (read-only, full); the message names the folder and the fix."""


def one_line(err: BaseException, limit: int = 160) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def output_error(path: Path, err: OSError) -> OutputError:
    """The one-line error for a failed write under ``path``, with the fix that fits its cause."""
    if err.errno in _NO_SPACE:
        fix = "the disk is full: free space (or pass another --out) and rerun; finished batches are kept"
    elif err.errno in _NOT_WRITABLE:
        fix = "the folder is not writable: make it writable or pass a writable --out"
    else:
        fix = "check the folder, or pass another --out"
    return OutputError(f"cannot write {path}: {err.strerror or one_line(err)}; {fix}")


def atomic_write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` so that a reader, or a process killed at any instant, sees the old file or the new.

    The bytes go to a temporary file beside ``path`` and are fsync'ed, then renamed over ``path``; the folder is
    fsync'ed so that the rename itself survives a crash. A failed write leaves ``path`` as it was and no temporary
    file (a ``kill -9`` may leave one, named ``.<name>.<pid>.tmp``, which the next writer under the lock removes).

    Example:
        >>> atomic_write_parquet(pd.DataFrame({"a": [1]}), Path("/tmp/ribench-doc/a.parquet"))
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            frame.to_parquet(tmp, index=False)
            _fsync(tmp)
            _replace_into_place(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as err:
        raise output_error(path, err) from err


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_into_place(tmp: Path, path: Path) -> None:
    os.replace(tmp, path)
    _fsync(path.parent)


def remove_stale_temps(path: Path) -> None:
    """Remove temporary files that killed writers of ``path`` left; call only while holding the lock of ``path``."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


def read_parquet_checked(path: Path, fix: str, columns: list[str] | None = None) -> pd.DataFrame:
    """``pd.read_parquet``, but a damaged file is a one-line ``DamagedTableError`` naming it and ``fix``.

    Example:
        >>> read_parquet_checked(Path("results/cifar10-adv/standard_cnn.parquet"), "delete it", columns=["unit"])
    """
    try:
        return pd.read_parquet(path, columns=columns)
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as err:  # pyarrow: ArrowInvalid is a ValueError, ArrowIOError an OSError
        raise DamagedTableError(f"{path} is not a readable Parquet file ({one_line(err)}); {fix}") from err


class ResultsStore:
    """The tables, per-example files, batch parts and locks under one results folder.

    Example:
        >>> store = ResultsStore("/tmp/ribench-doc")
        >>> store.read("cifar10-adv-quick").empty
        True
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = results_root(root)

    def table_path(self, suite: str, model: str) -> Path:
        return self.root / suite / f"{model}.parquet"

    def examples_path(self, key: UnitKey) -> Path:
        return self.root / key.suite / key.model / f"{key.plugin}-{key.unit}.examples.parquet"

    def work_dir(self, key: UnitKey) -> Path:
        return self.root / ".work" / key.suite / key.model / f"{key.plugin}-{key.unit}"

    # locks: files under .work/locks/ that stay in place, so every waiter locks the same inode
    def table_lock(self, suite: str, model: str) -> FileLock:
        """The lock held around every read-modify-write of the model x suite table."""
        return self._lock(self.root / ".work" / "locks" / suite / f"{model}.lock")

    def unit_claim(self, key: UnitKey) -> FileLock:
        """The lock held by the one process that computes and finishes this unit (its parts, examples and rows)."""
        return self._lock(self.root / ".work" / "locks" / key.suite / key.model / f"{key.plugin}-{key.unit}.lock")

    def _lock(self, path: Path) -> FileLock:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise output_error(path.parent, err) from err
        return FileLock(path)

    def check_writable(self) -> None:
        """Fail with a one-line ``OutputError`` now, before anything is computed, if the folder cannot be written."""
        probe = self.root / f".write-probe.{os.getpid()}.tmp"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with open(probe, "wb") as f:
                f.write(b"\0" * 4096)
                f.flush()
                os.fsync(f.fileno())
        except OSError as err:
            raise output_error(self.root, err) from err
        finally:
            if probe.exists():
                probe.unlink()

    def has_unit(self, key: UnitKey) -> bool:
        path = self.table_path(key.suite, key.model)
        if not path.exists():
            return False
        return bool((self._read_table(path, columns=["unit"])["unit"] == key.unit).any())

    def append_rows(self, suite: str, model: str, rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
        """Append rows to the model x suite table, replacing rows with the same (unit, metric).

        Safe from several processes at once: the read, concatenation and atomic write hold the table's lock.

        Example:
            >>> ResultsStore("/tmp/ribench-doc").append_rows("s", "m", [{"unit": "u1", "metric": "accuracy"}])
        """
        new = pd.DataFrame(list(rows), columns=ROW_COLUMNS)
        path = self.table_path(suite, model)
        with self.table_lock(suite, model):
            remove_stale_temps(path)
            if path.exists():
                old = self._read_table(path)
                new = pd.concat([old, new], ignore_index=True).drop_duplicates(["unit", "metric"], keep="last")
            atomic_write_parquet(new, path)
        return new

    def _read_table(self, path: Path, columns: list[str] | None = None) -> pd.DataFrame:
        fix = (
            f"move it aside and rerun the `bench run` commands that wrote it: units whose per-example files are in "
            f"{path.with_suffix('')}/ get their rows back from them, the others are recomputed"
        )
        return read_parquet_checked(path, fix, columns)

    # per-batch parts of a running unit (written and read only by the unit's claim holder)
    def part_path(self, key: UnitKey, start: int) -> Path:
        return self.work_dir(key) / f"part-{start:08d}.parquet"

    def read_part(self, key: UnitKey, start: int) -> pd.DataFrame:
        path = self.part_path(key, start)
        return read_parquet_checked(path, "delete it and rerun the same command: only that batch is recomputed")

    def read_unit_examples(self, key: UnitKey) -> pd.DataFrame | None:
        """The per-example outcomes of a finished unit (with its compute seconds in ``attrs``), or None."""
        path = self.examples_path(key)
        if not path.exists():
            return None
        return read_parquet_checked(path, "delete it and rerun the same command: that unit is recomputed")

    def finish_unit(self, key: UnitKey, examples: pd.DataFrame, rows: list[dict[str, Any]]) -> None:
        """Write a unit's per-example file and rows, then drop its parts; call only while holding its claim."""
        remove_stale_temps(self.examples_path(key))
        atomic_write_parquet(examples, self.examples_path(key))
        self.append_rows(key.suite, key.model, rows)
        shutil.rmtree(self.work_dir(key), ignore_errors=True)

    def rename_model(self, old: str, new: str) -> list[str]:
        """Move every result of model ``old`` to ``new``: rows get the new name and unit ids (the unit hashes the
        model name), per-example files move with them; returns the suites touched.

        Each suite's table is rewritten under its lock (new table written before the old one goes), so a crash
        leaves either the old or the new name complete for that suite, never a half; rerunning finishes the rest.

        Example:
            >>> ResultsStore("/tmp/ribench-doc").rename_model("fgsmat_cnn", "fgsmat_cnn_ft1")  # doctest: +SKIP
            ['cifar10-adv', 'cifar10-interp']
        """
        suites = sorted(p.parent.name for p in self.root.glob(f"*/{old}.parquet"))
        clash = [s for s in suites if self.table_path(s, new).exists()]
        if clash:
            raise OutputError(f"{new} already has results in {', '.join(clash)}; choose another name")
        for suite in suites:
            self._rename_in_suite(suite, old, new)
        return suites

    def _rename_in_suite(self, suite: str, old: str, new: str) -> None:
        with self.table_lock(suite, old), self.table_lock(suite, new):
            rows = self._read_table(self.table_path(suite, old))
            renamed = rows.assign(model=new)
            keys = [_unit_key(row) for _, row in renamed.iterrows()]
            renamed["unit"] = [k.unit for k in keys]
            for (_, row), key in zip(rows.iterrows(), keys, strict=True):
                source = self.root / suite / old / f"{row['plugin']}-{row['unit']}.examples.parquet"
                if source.exists():
                    key_path = self.examples_path(key)
                    key_path.parent.mkdir(parents=True, exist_ok=True)
                    source.replace(key_path)
            atomic_write_parquet(renamed, self.table_path(suite, new))
            self.table_path(suite, old).unlink()
            folder = self.root / suite / old
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()

    def read(self, suite: str | None = None, model: str | None = None) -> pd.DataFrame:
        pattern = f"{suite or '*'}/{model or '*'}.parquet"
        frames = [self._read_table(p) for p in sorted(self.root.glob(pattern))]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ROW_COLUMNS)

    def read_examples(self, suite: str, model: str, plugin: str | None = None) -> dict[str, pd.DataFrame]:
        folder = self.root / suite / model
        return {p.name: pd.read_parquet(p) for p in sorted(folder.glob(f"{plugin or '*'}-*.examples.parquet"))}
