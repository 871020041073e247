"""Zoo cards without torch: where zoo folders are, which names they hold, what a valid card has.

A zoo folder holds ``<name>/card.yaml`` (plus ``weights.safetensors``, or a ``model.py`` factory). Names are looked
up in this order, and the first folder holding a name wins, so a private zoo never hides an official model:

1. the clone's ``model_zoo/``, when bench runs from a clone;
2. the user cache ``$RIBENCH_CACHE/zoo`` (default ``~/.cache/ribench/zoo``), where ``bench zoo fetch`` puts cards;
3. ``--zoo DIR`` folders (``add_zoo_roots``), in the order given;
4. ``RIBENCH_ZOO``, a path list (``dir1:dir2``).

New models (``bench train``, ``bench zoo submit``) are written to the first ``RIBENCH_ZOO`` folder when it is set,
else to the clone's ``model_zoo/``, else to the user cache.

Example:
    >>> [p.name for p in zoo_roots()][-1:]
    ['zoo']
"""

from __future__ import annotations

import hashlib
import os
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from bench.exceptions import BadModelError, ChecksumError
from bench.paths import cache_root, clone_root, path_list
from bench.provenance import sha256_file
from bench.registry import MODELS

WEIGHTS_FILE = "weights.safetensors"
CARD_FILE = "card.yaml"
FACTORY_FILE = "model.py"
REQUIRED_CARD_KEYS = {
    "name": str,
    "method": str,
    "arch": str,
    "head": str,
    "dataset": str,
    "num_classes": int,
    "input_size": int,
    "normalization": str,
    "hyperparameters": dict,
    "sha256": str,
    "license": str,
}
# A card for a Python factory (model.py) says only what is true of any model: what it was trained on and for.
FACTORY_CARD_KEYS = {k: REQUIRED_CARD_KEYS[k] for k in ("name", "dataset", "num_classes", "input_size", "license")}

_extra_roots: list[Path] = []


def add_zoo_roots(folders: list[str | os.PathLike]) -> None:
    """Search ``folders`` too (after the official zoo and the cache, before ``RIBENCH_ZOO``) and register them."""
    for folder in folders:
        path = Path(folder).expanduser().resolve()
        if not path.is_dir():
            raise FileNotFoundError(f"--zoo {folder}: no such folder")
        if path not in _extra_roots:
            _extra_roots.append(path)
    register_zoo()


def official_zoo() -> Path | None:
    """The clone's ``model_zoo/``, or None when running from an installed package."""
    clone = clone_root()
    return clone / "model_zoo" if clone is not None else None


def cache_zoo() -> Path:
    return cache_root() / "zoo"


def zoo_roots() -> list[Path]:
    """Every zoo folder, in lookup order (see the module docstring); folders that do not exist are kept."""
    official = official_zoo()
    roots = ([official] if official else []) + [cache_zoo(), *_extra_roots, *path_list(os.environ.get("RIBENCH_ZOO"))]
    return list(dict.fromkeys(roots))


def zoo_root() -> Path:
    """Where new models are written: the first ``RIBENCH_ZOO`` folder, else the clone's zoo, else the cache."""
    env = path_list(os.environ.get("RIBENCH_ZOO"))
    return env[0] if env else official_zoo() or cache_zoo()


def zoo_folders() -> dict[str, Path]:
    """Model name -> its folder, the first root holding the name winning."""
    found: dict[str, Path] = {}
    for root in zoo_roots():
        for card_path in sorted(root.glob(f"*/{CARD_FILE}")) if root.is_dir() else []:
            found.setdefault(card_path.parent.name, card_path.parent)
    return found


def find_card(name: str) -> Path:
    """The folder of zoo model ``name`` (first root that has it); unknown names fail with the closest names."""
    folder = zoo_folders().get(name)
    if folder is None:
        MODELS.entry(name)  # unknown names fail here with the closest matches
        raise FileNotFoundError(f"{name} is not a zoo model (no {CARD_FILE} in {', '.join(map(str, zoo_roots()))})")
    return folder


def read_card(name: str) -> dict[str, Any]:
    """The card of zoo model ``name`` as a dict.

    Example:
        >>> read_card("standard_cnn")["dataset"]
        'cifar10'
    """
    return yaml.load((find_card(name) / CARD_FILE).read_text(), Loader=_Loader)


def write_yaml_atomically(path: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as YAML (keys in their order) through a temporary file in ``path``'s folder and a rename, so
    that a reader sees the old file or the new one, never half of one.

    Example:
        >>> write_yaml_atomically(folder / CARD_FILE, {"name": "standard_cnn"})  # doctest: +SKIP
        PosixPath('model_zoo/standard_cnn/card.yaml')
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    tmp.replace(path)
    return path


def validate_card(card: dict[str, Any], factory: bool | None = None) -> list[str]:
    """Return the schema problems of a card (empty when it is valid).

    Args:
        card: the parsed card.
        factory: whether the model is a Python factory (``model.py``), whose card needs only ``FACTORY_CARD_KEYS``;
            None: whether the card names a ``factory`` file.

    Returns:
        One message per missing key or key of the wrong type.

    Example:
        >>> validate_card({"name": "m", "dataset": "cifar10", "num_classes": 10, "input_size": 32}, factory=True)
        ["missing key 'license'"]
    """
    factory = bool(card.get("factory")) if factory is None else factory
    required = FACTORY_CARD_KEYS if factory else REQUIRED_CARD_KEYS
    problems = [f"missing key '{k}'" for k in required if k not in card]
    problems += [
        f"key '{k}' must be {t.__name__}, got {type(card[k]).__name__}"
        for k, t in required.items()
        if k in card and not isinstance(card[k], t)
    ]
    return problems


def verify_file(path: Path, expected_sha256: str) -> None:
    """Refuse a file whose sha256 is not the card's (``ChecksumError``, one line naming the file).

    Example:
        >>> verify_file(Path("model_zoo/standard_cnn/weights.safetensors"), read_card("standard_cnn")["sha256"])
    """
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise ChecksumError(
            f"refusing to load {path}: sha256 {actual[:12]}… does not match the card's {expected_sha256[:12]}…"
            " (re-download the file or re-run `bench zoo verify`)"
        )


def weights_path(card: dict[str, Any], folder: Path, download: bool = False) -> Path:
    """The weights beside the card, else the cached copy of the card's ``url`` (downloaded only when asked).

    Args:
        card: a model card.
        folder: the card's folder.
        download: fetch the card's ``url`` into the cache when the copy is missing (sha256-checked).

    Returns:
        The path of the weights file.

    Example:
        >>> weights_path(read_card("standard_cnn"), find_card("standard_cnn")).name
        'weights.safetensors'
    """
    local = folder / card.get("weights", WEIGHTS_FILE)
    if local.exists() or not card.get("url"):
        return local
    cached = cache_root() / "weights" / f"{card['name']}-{card['sha256'][:16]}.safetensors"
    if not cached.exists():
        if not download:
            raise FileNotFoundError(
                f"{card['name']}: weights not in {cached}; fetch {card['url']} there "
                f"(or run `bench zoo fetch {card['name']}` with internet)"
            )
        download_file(card["url"], cached, card["sha256"])
    return cached


def download_file(url: str, dest: Path, sha256: str | None = None) -> Path:
    """Download ``url`` (``https://``, ``file://``, ...) to ``dest`` atomically, refusing a sha256 mismatch.

    Example:
        >>> download_file("file:///tmp/w.safetensors", Path("/tmp/copy.safetensors"))
        PosixPath('/tmp/copy.safetensors')
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as f:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                f.write(chunk)
    except (OSError, ValueError) as err:
        partial.unlink(missing_ok=True)
        raise BadModelError(f"cannot download {url}: {' '.join(str(err).split())}") from None
    if sha256 is not None and digest.hexdigest() != sha256:
        partial.unlink(missing_ok=True)
        raise ChecksumError(f"refusing {url}: sha256 {digest.hexdigest()[:12]}… is not the card's {sha256[:12]}…")
    os.replace(partial, dest)
    return dest


def fetch(source: str) -> Path:
    """Put a model's card in the user cache's zoo and its weights (from the card's ``url``) in the cache.

    Args:
        source: a zoo model name (its card names the ``url``), or the path or URL of a ``card.yaml``.

    Returns:
        The folder the model is now found in (``$RIBENCH_CACHE/zoo/<name>`` for a card from elsewhere).

    Example:
        >>> fetch("https://example.org/ribench/standard_cnn/card.yaml")  # then: load_model("standard_cnn")
    """
    card_url = source if "://" in source else Path(source).resolve().as_uri() if Path(source).is_file() else None
    if card_url is None:
        folder, card = find_card(source), read_card(source)
    else:
        card = yaml.load(_read_url(card_url), Loader=_Loader) or {}
        problems = validate_card(card) + ([] if card.get("url") else ["no 'url' of its weights"])
        if problems:
            raise BadModelError(f"{source}: not a card to fetch ({'; '.join(problems)})")
        card["url"] = urllib.parse.urljoin(card_url, card["url"])  # a url relative to the card's
        folder = cache_zoo() / card["name"]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CARD_FILE).write_text(yaml.safe_dump(card, sort_keys=False))
    if card.get("factory") or isinstance(card.get("weights"), list):
        raise BadModelError(f"{card['name']}: fetch takes cards with one weights file and its url")
    weights = weights_path(card, folder, download=True)
    verify_file(weights, card["sha256"])
    register_zoo()
    return folder


def _read_url(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read().decode()
    except (OSError, ValueError) as err:
        raise BadModelError(f"cannot read {url}: {' '.join(str(err).split())}") from None


def register_zoo() -> None:
    """Register every zoo model under its folder name (reads no card, imports no torch until one is loaded)."""
    for name, folder in zoo_folders().items():
        MODELS.remove(name)  # a name registered earlier (another RIBENCH_ZOO) gives way to the zoo's
        MODELS.declare(name, "bench.models.zoo:load_model", name, source="zoo", path=str(folder))


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def rename_zoo_folder(old: str, new: str) -> Path:
    """Rename zoo model ``old`` to ``new`` in its zoo folder: the folder moves and the card's ``name`` changes, with
    ``renamed_from`` kept for provenance (the weights and their sha256 are untouched).

    Example:
        >>> rename_zoo_folder("pgdat_cnn", "pgdat_cnn_ft3")  # doctest: +SKIP
        PosixPath('model_zoo/pgdat_cnn_ft3')
    """
    folder = find_card(old)
    target = folder.parent / new
    if target.exists() or new in zoo_folders():
        raise BadModelError(f"{new} is already a zoo model ({target}); choose another name")
    card_path = folder / CARD_FILE
    card = yaml.load(card_path.read_text(), Loader=_Loader)
    card["name"] = new
    card["renamed_from"] = [*card.get("renamed_from", []), old]
    write_yaml_atomically(card_path, card)
    folder.rename(target)
    return target
