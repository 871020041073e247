"""``bench reproduce``: rebuild ``leaderboards/`` from ``results/`` (figures, paper tables, leaderboards, and one
page per zoo model under ``models/``).

The build is deterministic, so the same results give the same bytes. ``MANIFEST.sha256`` lists every generated
file with its sha256; files a previous build generated and this one does not are removed (nothing else is
touched). ``check`` rebuilds into a sibling folder and reports the files that differ from the committed ones.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from bench.report.common import read_cards, write_text
from bench.report.figures import FigureOutcome, write_figures
from bench.report.leaderboard import build_boards, write_leaderboards
from bench.report.model_pages import write_model_pages
from bench.report.tables import SPEC_DIR, load_spec, write_tables

MANIFEST = "MANIFEST.sha256"


@dataclass
class Build:
    written: list[Path] = field(default_factory=list)
    figures: list[FigureOutcome] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    cams_skipped: dict[str, str] = field(default_factory=dict)  # model page -> why it has no CAM figure


def table_families(spec_dir: str | os.PathLike = SPEC_DIR) -> list[str]:
    return sorted({load_spec(p)["family"] for p in Path(spec_dir).glob("*.yaml")})


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_manifest(out: Path) -> dict[str, str]:
    path = out / MANIFEST
    if not path.exists():
        return {}
    entries = (line.split("  ", 1) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return {name: digest for digest, name in entries}


def rebuild(
    results: str | os.PathLike | None = None,
    out_dir: str | os.PathLike = "leaderboards",
    zoo: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
) -> Build:
    out = Path(out_dir)
    previous = read_manifest(out)
    build = Build()
    build.figures = write_figures(results, out / "figures", zoo, data_root)
    build.written += [p for outcome in build.figures for p in outcome.paths]
    for family in table_families():
        build.written += write_tables(family, results, out / "tables", zoo)
    boards = build_boards(results, out, read_cards(zoo))
    build.written += write_leaderboards(results, out, zoo=zoo, boards=boards)
    build.written += write_model_pages(results, out, zoo, data_root, boards, build.cams_skipped)
    names = sorted({p.relative_to(out).as_posix() for p in build.written})
    for stale in sorted(set(previous) - set(names)):
        path = out / stale
        if path.is_file():
            path.unlink()
            build.removed.append(path)
    write_text(out / MANIFEST, "".join(f"{sha256(out / name)}  {name}\n" for name in names))
    return build


def check(
    results: str | os.PathLike | None = None,
    out_dir: str | os.PathLike = "leaderboards",
    zoo: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
) -> list[str]:
    """Rebuild next to ``out_dir`` and return the generated files that differ from it (empty: reproducible)."""
    out = Path(out_dir)
    scratch = out.parent / f".{out.name}.check"  # same depth: relative links to model cards stay equal
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        rebuild(results, scratch, zoo, data_root)
        fresh, committed = read_manifest(scratch), read_manifest(out)
        return sorted(
            name
            for name in set(fresh) | set(committed)
            if fresh.get(name) != committed.get(name) or not (out / name).is_file() or sha256(out / name) != fresh[name]
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
