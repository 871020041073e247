"""``bench leaderboard``, ``bench tables``, ``bench figures``, ``bench reproduce``: everything in leaderboards/;
``bench compare`` (paired differences of two models) and ``bench intervals`` (interval columns of stored rows)."""

from __future__ import annotations

from pathlib import Path

import typer

from bench.paths import project_dir

DEFAULT_OUT = project_dir("leaderboards")  # ./leaderboards; inside the clone, the clone's
RESULTS_HELP = "Results folder (default: ./results; inside the clone, its results/)."
ZOO_HELP = "Model zoo folder with <name>/card.yaml (default: model_zoo/)."


def _echo_paths(paths: list[Path]) -> None:
    for path in paths:
        typer.echo(f"wrote {path}")


def leaderboard(
    suite: str | None = typer.Option(None, help="Only this suite (default: every suite with results)."),
    results: str | None = typer.Option(None, envvar="RIBENCH_RESULTS", help=RESULTS_HELP),
    out: Path = typer.Option(DEFAULT_OUT, help="Output folder for <suite>.md/.csv/.html and index.html."),
    zoo: str | None = typer.Option(None, envvar="RIBENCH_ZOO", help=ZOO_HELP),
    data_root: str | None = typer.Option(None, envvar="RIBENCH_DATA", help="Data folder (test images for the CAMs)."),
) -> None:
    """Aggregate results/ into leaderboards/<suite>.md, <suite>.csv, <suite>.html, index.html and the model pages
    (models/<name>.html, which every leaderboard row links to)."""
    import torch

    from bench.report.common import read_cards
    from bench.report.leaderboard import build_boards, write_leaderboards
    from bench.report.model_pages import write_model_pages

    torch.set_num_threads(1)  # identical CAMs on every run
    boards = build_boards(results, out, read_cards(zoo))
    _echo_paths(write_leaderboards(results, out, suite=suite, zoo=zoo, boards=boards))
    _echo_paths(write_model_pages(results, out, zoo, data_root, boards))


def tables(
    family: str = typer.Argument(
        ..., help="Table family: topgap (the paper's tables) or ribench (our own, e.g. the λ sweep)."
    ),
    results: str | None = typer.Option(None, envvar="RIBENCH_RESULTS", help=RESULTS_HELP),
    out: Path = typer.Option(DEFAULT_OUT / "tables", help="Output folder; tables go to OUT/FAMILY/<table>.md/.tex."),
    zoo: str | None = typer.Option(None, envvar="RIBENCH_ZOO", help=ZOO_HELP),
) -> None:
    """Regenerate a paper's tables (Markdown + LaTeX) from results/, the paper's values beside ours."""
    from bench.report.tables import write_tables

    _echo_paths(write_tables(family, results, out, zoo))


def figures(
    only: list[str] = typer.Option(None, "--only", help="Only these figures (repeatable)."),
    results: str | None = typer.Option(None, envvar="RIBENCH_RESULTS", help=RESULTS_HELP),
    out: Path = typer.Option(DEFAULT_OUT / "figures", help="Output folder for <figure>.png and .svg."),
    zoo: str | None = typer.Option(None, envvar="RIBENCH_ZOO", help=ZOO_HELP),
    data_root: str | None = typer.Option(None, envvar="RIBENCH_DATA", help="Data folder (pets3 for the CAM grid)."),
) -> None:
    """Draw the figures (seaborn; PNG + SVG); a figure whose rows do not exist yet is skipped with the reason."""
    import torch

    from bench.report.figures import write_figures

    torch.set_num_threads(1)  # identical CAMs on every run
    for outcome in write_figures(results, out, zoo, data_root, only or None):
        if outcome.skipped:
            typer.echo(f"skipped {outcome.name}: {outcome.skipped}")
        _echo_paths(outcome.paths)


def reproduce(
    results: str | None = typer.Option(None, envvar="RIBENCH_RESULTS", help=RESULTS_HELP),
    out: Path = typer.Option(DEFAULT_OUT, help="The leaderboards folder to rebuild."),
    zoo: str | None = typer.Option(None, envvar="RIBENCH_ZOO", help=ZOO_HELP),
    data_root: str | None = typer.Option(None, envvar="RIBENCH_DATA", help="Data folder (pets3 for the CAM grid)."),
    check: bool = typer.Option(False, "--check", help="Do not write: exit 1 if a rebuild would change any file."),
) -> None:
    """Rebuild leaderboards/ (figures, paper tables, leaderboards) from results/, byte-for-byte."""
    import torch

    from bench.report import reproduce as build

    torch.set_num_threads(1)
    if check:
        differ = build.check(results, out, zoo, data_root)
        for name in differ:
            typer.echo(f"differs: {name}")
        typer.echo(f"{len(differ)} generated files differ from {out}" if differ else f"{out} is reproducible")
        raise typer.Exit(1 if differ else 0)
    result = build.rebuild(results, out, zoo, data_root)
    for outcome in result.figures:
        if outcome.skipped:
            typer.echo(f"skipped figure {outcome.name}: {outcome.skipped}")
    for why, names in _grouped(result.cams_skipped).items():
        typer.echo(f"no CAM figure on {len(names)} model pages ({', '.join(names)}): {why}")
    for path in result.removed:
        typer.echo(f"removed stale {path}")
    typer.echo(f"wrote {len(result.written)} files to {out} (list and sha256 in {out / build.MANIFEST})")


def _grouped(reasons: dict[str, str]) -> dict[str, list[str]]:
    """{name: why} -> {why: [names]}, so that one cause is reported once."""
    groups: dict[str, list[str]] = {}
    for name, why in sorted(reasons.items()):
        groups.setdefault(why, []).append(name)
    return groups


def compare(
    model_a: str = typer.Argument(..., help="First model (A)."),
    model_b: str = typer.Argument(..., help="Second model (B)."),
    suite: str = typer.Option(..., help="Suite both models were evaluated on."),
    plugin: str | None = typer.Option(None, help="Only this plugin's settings (default: every shared setting)."),
    metric: str | None = typer.Option(None, help="Only this metric, or 'all' (default: each setting's headline)."),
    results: str | None = typer.Option(None, envvar="RIBENCH_RESULTS", help=RESULTS_HELP),
    zoo: str | None = typer.Option(None, envvar="RIBENCH_ZOO", help=ZOO_HELP),
) -> None:
    """Paired difference A - B on the same images, with a 95% interval and a test (McNemar / paired bootstrap)."""
    from bench.pairing import compare as compare_models

    comparison = compare_models(model_a, model_b, suite, plugin, metric, results, zoo)  # MismatchError: one line
    for line in comparison.lines():
        typer.echo(line)


def intervals(
    suite: str | None = typer.Option(None, help="Only this suite."),
    model: str | None = typer.Option(None, help="Only this model."),
    resummarize: list[str] = typer.Option(
        [], "--resummarize", help="Also recompute this plugin's values from its stored outcomes (repeatable)."
    ),
    results: str | None = typer.Option(None, envvar="RIBENCH_RESULTS", help=RESULTS_HELP),
) -> None:
    """Recompute ci_low, ci_high, ci_method of stored rows from their per-example outcomes (no model is run)."""
    from bench.intervals import recompute

    done = recompute(results, suite, model, resummarize)
    for path in done.files:
        typer.echo(f"updated {path}")
    typer.echo(
        f"{done.units} units: {done.units - done.without_examples} with per-example outcomes, "
        f"{done.without_examples} without; {done.resummarized} re-summarized; {len(done.files)} files changed"
    )


def register(app: typer.Typer) -> None:
    for name, command in (
        ("leaderboard", leaderboard),
        ("tables", tables),
        ("figures", figures),
        ("reproduce", reproduce),
        ("compare", compare),
        ("intervals", intervals),
    ):
        app.command(name)(command)
