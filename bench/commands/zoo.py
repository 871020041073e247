"""``bench zoo``: list, show, verify, submit and fetch models."""

from __future__ import annotations

from pathlib import Path

import typer

zoo_app = typer.Typer(help="The model zoo: list, show, verify, submit.", no_args_is_help=True)


@zoo_app.command("list")
def zoo_list() -> None:
    """One line per zoo model: name, method, arch, dataset, clean accuracy."""
    from bench.models.cards import read_card
    from bench.registry import MODELS

    for entry in MODELS:
        if entry.meta.get("source") != "zoo":
            continue
        card = read_card(entry.name)
        acc = (card.get("clean_accuracy") or {}).get("value", "–")
        method, arch = card.get("method", "–"), card.get("arch", "python")
        typer.echo(f"{entry.name:22s} {method:10s} {arch:16s} {card['dataset']:10s} clean={acc}")


@zoo_app.command("show")
def zoo_show(name: str = typer.Argument(..., help="Zoo model name.")) -> None:
    """Print a model's card."""
    import yaml

    from bench.models.cards import read_card

    typer.echo(yaml.safe_dump(read_card(name), sort_keys=False))


@zoo_app.command("verify")
def zoo_verify(name: str = typer.Argument(None, help="Zoo model name (default: every model).")) -> None:
    """Re-hash checkpoints against their cards' sha256; exit 1 if any differs."""
    from bench.models.zoo import verify_model
    from bench.registry import MODELS

    names = [name] if name else [e.name for e in MODELS if e.meta.get("source") == "zoo"]
    results = [verify_model(n) for n in names]
    for _, message in results:
        typer.echo(message)
    if not all(ok for ok, _ in results):
        raise typer.Exit(1)


@zoo_app.command("submit")
def zoo_submit(
    path: Path = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        help="A .safetensors checkpoint of a known arch, or a .py file defining create_model().",
    ),
    card: Path = typer.Option(..., exists=True, dir_okay=False, help="The model card (YAML)."),
) -> None:
    """Validate a model (card schema, logits, determinism, input gradients, smoke accuracy) and add it to the zoo."""
    import yaml

    from bench.models.submit import accept, validate_submission

    card_data = yaml.safe_load(card.read_text()) or {}
    _, checks = validate_submission(path, card_data)
    for check in checks:
        typer.echo(str(check))
    if not all(c.passed for c in checks):
        typer.echo("error: submission rejected; fix the failed checks above", err=True)
        raise typer.Exit(1)
    typer.echo(f"accepted: {accept(path, card_data)}")


@zoo_app.command("fetch")
def zoo_fetch(
    source: str = typer.Argument(..., help="A zoo model whose card gives a url, or the path or URL of a card.yaml."),
) -> None:
    """Put a model's card and its weights (the card's url, sha256-checked) in the user cache's zoo (needs internet
    for http(s) urls); `bench run --model NAME` then finds it from any directory."""
    from bench.models.cards import fetch

    typer.echo(f"fetched: {fetch(source)}")


MODEL_NAME = r"[a-z0-9][a-z0-9_]*"


@zoo_app.command("rename")
def zoo_rename(
    old: str = typer.Argument(..., help="The zoo model to rename."),
    new: str = typer.Argument(..., help="Its new name, e.g. pgdat_cnn_ft3 for a 3-epoch fine-tune."),
    results: str | None = typer.Option(None, envvar="RIBENCH_RESULTS", help="Results folder (default ./results)."),
) -> None:
    """Rename a zoo model and move its results with it (rows, unit ids, per-example files), so that no row points at
    a name the zoo no longer holds; rebuild the leaderboards afterwards with `bench reproduce`."""
    import re

    from bench.models.cards import find_card, rename_zoo_folder, zoo_folders
    from bench.results import ResultsStore, results_root

    find_card(old)  # an unknown name fails here, before anything moves
    if not re.fullmatch(MODEL_NAME, new) or new in zoo_folders():
        why = "is already a zoo model" if new in zoo_folders() else "is not a model name (a-z, 0-9 and _)"
        typer.echo(f"error: {new!r} {why}; choose another name", err=True)
        raise typer.Exit(2)
    suites = ResultsStore(results_root(results)).rename_model(old, new)
    typer.echo(f"results moved to {new} in {len(suites)} suite(s): {', '.join(suites) or 'none'}")
    typer.echo(f"zoo: {rename_zoo_folder(old, new)}")


def register(app: typer.Typer) -> None:
    app.add_typer(zoo_app, name="zoo")
