"""Where RIBench finds and puts things: the clone it runs from (if any), the user cache, the results folder.

A leaf module (no torch). Run from a clone (an editable install or the source tree), ``clone_root()`` is the
repository; from an installed wheel it is None, and nothing is ever written next to the installed package.

Example:
    >>> default_results_root().name
    'results'
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent  # the clone's root when running from one; site-packages when installed


def clone_root() -> Path | None:
    """The repository this package runs from, or None for an installed package (no pyproject.toml beside it)."""
    return REPO_ROOT if (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "model_zoo").is_dir() else None


def cache_root() -> Path:
    """``RIBENCH_CACHE`` or ``~/.cache/ribench``: fetched zoo cards and weights, corruption caches."""
    return Path(os.environ.get("RIBENCH_CACHE") or "~/.cache/ribench").expanduser()


def path_list(value: str | None) -> list[Path]:
    """Folders of an ``os.pathsep``-separated list (``RIBENCH_ZOO=a:b``), empty entries skipped."""
    return [Path(p).expanduser() for p in (value or "").split(os.pathsep) if p.strip()]


def project_dir(name: str, cwd: Path | None = None) -> Path:
    """``<name>/`` of the current directory; inside the clone (wherever in it), the clone's own ``<name>/``.

    Example:
        >>> project_dir("leaderboards", Path("/tmp/somewhere"))
        PosixPath('/tmp/somewhere/leaderboards')
    """
    here = (cwd or Path.cwd()).resolve()
    clone = clone_root()
    if clone is not None and (here == clone or clone in here.parents):
        return clone / name
    return here / name


def default_results_root(cwd: Path | None = None) -> Path:
    """Where results go without ``--out`` or ``RIBENCH_RESULTS``: ``project_dir("results")``.

    Example:
        >>> default_results_root(Path("/tmp/somewhere"))
        PosixPath('/tmp/somewhere/results')
    """
    return project_dir("results", cwd)
