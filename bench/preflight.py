"""Checks that need no torch, run before a command imports it: names, ``--only``, and whether a model fits a suite.

Every failure is a ``RIBenchError`` subclass, so the CLI answers a mistyped name or a model/suite mismatch in well
under a second, as one line.

Example:
    >>> check_run(["topgap_cnn_pets3"], ["cifar10-adv"], ())
    Traceback (most recent call last):
    bench.exceptions.ModelSuiteMismatch: topgap_cnn_pets3 was trained on pets3, 128 px, 3 classes; cifar10-adv \
evaluates cifar10, 32 px, 10 classes
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.exceptions import ModelSuiteMismatch, UnknownNameError
from bench.registry import DATASETS, MODELS
from bench.suites import SuiteOutline, check_only, suite_outline


@dataclass(frozen=True)
class Fit:
    """What a model was trained on, or what a suite evaluates: dataset, input size in pixels, number of classes."""

    dataset: str
    size: int | None
    classes: int | None

    def describe(self) -> str:
        return f"{self.dataset}, {self.size} px, {self.classes} classes"

    def differs(self, other: Fit) -> bool:
        """A model fits a dataset with its number of classes and input size (cifar10 models fit cifar10c)."""
        pairs = ((self.size, other.size), (self.classes, other.classes))
        return any(a is not None and b is not None and a != b for a, b in pairs)


def model_fit(model: str) -> Fit | None:
    """What zoo model ``model`` was trained on (from its card); None for models without a card."""
    entry = MODELS.peek(model)
    if entry.meta.get("source") != "zoo":
        return None
    from bench.models.cards import read_card

    card = read_card(model)
    return Fit(str(card.get("dataset", "?")), card.get("input_size"), card.get("num_classes"))


def dataset_fit(dataset: str) -> Fit:
    """Input size and number of classes of a registered dataset, from its declaration."""
    meta = DATASETS.peek(dataset).meta
    return Fit(dataset, meta.get("input_size"), meta.get("num_classes"))


def check_fit(model: str, suite: SuiteOutline) -> None:
    """Fail when zoo model ``model`` was trained for another input size or number of classes than ``suite``."""
    trained = model_fit(model)
    if trained is None or not suite.dataset:
        return
    evaluated = dataset_fit(suite.dataset)
    if trained.differs(evaluated):
        raise ModelSuiteMismatch(
            f"{model} was trained on {trained.describe()}; {suite.name} evaluates {evaluated.describe()}"
        )


def _check_model_name(name: str) -> None:
    """Unknown names fail with the closest names, and say where zoos are looked for when none was found."""
    from bench.models.cards import zoo_folders

    try:
        MODELS.peek(name)
    except UnknownNameError as err:
        if zoo_folders():
            raise
        raise UnknownNameError(
            f"{err}; no zoo found: pass --zoo DIR (e.g. a clone's model_zoo/), set RIBENCH_ZOO, "
            "or `bench zoo fetch CARD_URL`"
        ) from None


def check_run(models: list[str], suites: list[str], only: tuple[str, ...]) -> list[SuiteOutline]:
    """Check a run's names, its ``--only`` plugins and that every model fits every suite; return the outlines.

    Args:
        models: registered model names.
        suites: suite names or YAML paths.
        only: plugins to restrict the suites to (empty: all).

    Returns:
        The outline of each suite, in order.

    Example:
        >>> [o.dataset for o in check_run(["standard_cnn"], ["cifar10-adv-quick"], ("pgd",))]
        ['cifar10']
    """
    for name in models:
        _check_model_name(name)
    outlines = [suite_outline(name) for name in suites]
    for outline in outlines:
        check_only(outline.name, outline.plugins, only)
        for name in models:
            check_fit(name, outline)
    return outlines
