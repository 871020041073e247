"""Figures (seaborn) regenerated from results/ and the zoo, saved as PNG and SVG under ``leaderboards/figures/``.

* ``cam_l1_vs_k``: CAM l1 (cam_sparsity) vs k normalized by the number of CAM positions (the paper's Fig. 4),
  one line per dataset x architecture; standard models (Grad-CAM) as dashed horizontal lines.
* ``deletion_curves``: accuracy along deletion / insertion curves (deletion plugin), one panel per model.
* ``robust_vs_steps`` / ``robust_vs_eps``: PGD robust accuracy vs steps and vs epsilon, from pgd rows and the
  diagnostics plugin's rows.
* ``lambda_sweep``: accuracy (clean, FGSM, PGD-20/50, Square-1000, AutoAttack) vs the Top-GAP ℓ1 weight λ on the
  small CNN, drawn from the ``lambda-sweep`` table (one source for both); diverged values marked with ×.
* ``cam_grid_pets3``: example pets3 test images with the object mask outline, the standard model's Grad-CAM
  and the Top-GAP model's own CAM (computed from the zoo weights; deterministic on CPU).

Which rows a figure draws is said by the plugins (``Plugin.curve_point``), not by their names here. Every point
carries its row's 95% interval: error bars on points, bands along the deletion curves. A figure whose rows (or
models, or data) do not exist yet is skipped with the reason. Output is byte-for-byte reproducible: fixed SVG hash
salt, no dates in the metadata, sorted inputs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from bench.models.failures import read_failures  # noqa: E402
from bench.report.common import (  # noqa: E402
    ReportError,
    cam_positions,
    current_rows,
    format_eps,
    read_cards,
    sorted_rows,
)
from bench.report.tables import SPEC_DIR, build_table, load_spec  # noqa: E402
from bench.results import ResultsStore  # noqa: E402

SVG_SALT = "ribench"
CAM_GRID_IMAGES = 6
MODEL_CAM_IMAGES = 4  # per model page: cheap to compute, enough to see where the model looks


class SkipFigure(Exception):
    """The rows (or models, or data) a figure needs do not exist yet."""


@dataclass
class FigureOutcome:
    name: str
    paths: list[Path]
    skipped: str = ""


@dataclass
class FigureInputs:
    rows: pd.DataFrame
    cards: dict[str, dict[str, Any]]
    zoo: str | os.PathLike | None
    data_root: str | os.PathLike | None


def _style() -> None:
    sns.set_theme(style="whitegrid", context="paper")
    plt.rcParams.update({"svg.hashsalt": SVG_SALT, "figure.dpi": 100, "savefig.dpi": 120, "path.simplify": True})


# Figures made of images: matplotlib's SVG image embedding is not byte-stable across renders, so their SVG wraps
# the (stable) PNG instead of re-encoding every image.
RASTER_FIGURES = {"cam_grid_pets3"}


def save_png(fig: plt.Figure, path: Path) -> Path:
    """Save ``fig`` as a PNG without the metadata that would change between runs (the figure stays open)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", metadata={"Software": None}, bbox_inches="tight")
    return path


def save_figure(fig: plt.Figure, out_dir: Path, name: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    svg, png = out_dir / f"{name}.svg", save_png(fig, out_dir / f"{name}.png")
    if name in RASTER_FIGURES:
        plt.close(fig)
        svg.write_text(_svg_wrapping_png(png.read_bytes()))
        return [png, svg]
    fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    plt.close(fig)
    svg.write_text(_stable_clip_ids(svg.read_text()))
    return [png, svg]


def _svg_wrapping_png(png_bytes: bytes) -> str:
    import base64
    import struct

    width, height = struct.unpack(">II", png_bytes[16:24])  # the PNG IHDR chunk
    data = base64.b64encode(png_bytes).decode()
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">\n'
        f'<image width="{width}" height="{height}" xlink:href="data:image/png;base64,{data}"/>\n</svg>\n'
    )


def _stable_clip_ids(text: str) -> str:
    """Renumber clip-path ids in order of appearance: matplotlib hashes path clips with id(), which varies per run."""
    ids: dict[str, str] = {}
    for match in re.finditer(r'id="(p[0-9a-f]{10})"', text):
        ids.setdefault(match.group(1), f"clip{len(ids)}")
    return re.sub(r"\b(p[0-9a-f]{10})\b", lambda m: ids.get(m.group(1), m.group(1)), text)


def _card_label(card: dict[str, Any]) -> str:
    """dataset × arch, plus the starting model for fine-tuned ones (a different recipe is a different curve)."""
    label = f"{card.get('dataset', '?')} × {card.get('arch', '?')}"
    start = (card.get("hyperparameters") or {}).get("init_from")
    return f"{label} (from {start})" if start else label


# ----------------------------------------------------------------------------------------- CAM l1 vs k


def curve_rows(rows: pd.DataFrame, curve: str) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The rows whose plugin puts their metric on ``curve`` (``Plugin.curve_point``), with their points."""
    from bench.intervals import plugin_for

    keys = list(zip(rows["plugin"], rows["params"], rows["metric"], strict=True))
    points = {}
    for plugin, params, metric in set(keys):
        instance = plugin_for(plugin, params)
        point = instance.curve_point(metric) if instance is not None else None
        points[(plugin, params, metric)] = point if point is not None and point.get("curve") == curve else None
    keep = [points[k] is not None for k in keys]
    picked = rows[pd.Series(keep, index=rows.index, dtype=bool)]
    return picked, [points[k] for k, kept in zip(keys, keep, strict=True) if kept]


def cam_l1_data(inputs: FigureInputs) -> pd.DataFrame:
    rows, _ = curve_rows(inputs.rows, "cam_l1")
    records = []
    for model, group in rows.groupby("model", sort=True):
        card = inputs.cards.get(str(model))
        if card is None or card.get("dataset") not in set(group["dataset"]):
            continue
        own = group[group["dataset"] == card["dataset"]].sort_values(["n", "timestamp", "unit"]).iloc[-1]
        record = {"model": model, "curve": _card_label(card), "l1": float(own["value"]), "method": card.get("method")}
        record.update(_bounds(own))
        if card.get("method") == "topgap":
            k = int((card.get("head_kwargs") or {}).get("k", 0))
            record["normalized_k"] = k / cam_positions(card)
        records.append(record)
    return pd.DataFrame(records, columns=["model", "curve", "l1", "low", "high", "method", "normalized_k"])


def _bounds(row: pd.Series) -> dict[str, float]:
    """The row's 95% interval (NaN when it has none)."""
    low, high = row.get("ci_low", np.nan), row.get("ci_high", np.nan)
    return {"low": float(low) if pd.notna(low) else np.nan, "high": float(high) if pd.notna(high) else np.nan}


def _error_bars(ax: plt.Axes, data: pd.DataFrame, x: str, y: str, hue: str, palette: dict) -> None:
    """95% intervals of each point as error bars in its line's colour (points without one get none)."""
    for label, group in data.groupby(hue, sort=True):
        group = group[group["low"].notna() & group["high"].notna()]
        if len(group):
            below, above = (group[y] - group["low"]).clip(lower=0), (group["high"] - group[y]).clip(lower=0)
            ax.errorbar(group[x], group[y], yerr=[below, above], fmt="none", ecolor=palette[label], capsize=2, lw=1)


def figure_cam_l1_vs_k(inputs: FigureInputs) -> plt.Figure:
    data = cam_l1_data(inputs)
    topgap = data[data["method"] == "topgap"].sort_values(["curve", "normalized_k", "model"])
    if topgap.empty:
        raise SkipFigure("no cam_sparsity rows of Top-GAP zoo models yet (run a *-interp suite on topgap models)")
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    curves = sorted(topgap["curve"].unique())
    palette = dict(zip(curves, sns.color_palette(n_colors=len(curves)), strict=True))
    sns.lineplot(
        data=topgap,
        x="normalized_k",
        y="l1",
        hue="curve",
        hue_order=curves,
        palette=palette,
        marker="o",
        ax=ax,
        sort=True,
        errorbar=None,
    )
    _error_bars(ax, topgap, "normalized_k", "l1", "curve", palette)
    for _, row in data[data["method"] == "standard"].sort_values(["curve", "model"]).iterrows():
        color = palette.get(row["curve"], "grey")
        ax.axhline(row["l1"], ls="--", lw=1, color=color, label=f"{row['curve']} standard (Grad-CAM)")
        if pd.notna(row["low"]):
            ax.axhspan(row["low"], row["high"], color=color, alpha=0.08, lw=0)
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("k / number of CAM positions")
    ax.set_ylabel("CAM ℓ1 (mean of min-max CAM) ↓, 95% intervals")
    ax.set_title("CAM sparsity vs k (Top-GAP; dashed: standard + Grad-CAM)")
    ax.legend(fontsize=7)
    return fig


# ----------------------------------------------------------------------------------------- deletion curves


def deletion_data(rows: pd.DataFrame) -> pd.DataFrame:
    picked, points = curve_rows(rows, "deletion")
    records = []
    for (_, row), point in zip(picked.iterrows(), points, strict=True):
        records.append(
            {
                "model": f"{row['model']} ({row['dataset']})",
                "setting": point["setting"],
                "fraction": float(point["fraction"]),
                "accuracy": float(row["value"]),
                **_bounds(row),
                "n": int(row["n"]),
                "timestamp": row["timestamp"],
            }
        )
    columns = ["model", "setting", "fraction", "accuracy", "low", "high", "n", "timestamp"]
    data = pd.DataFrame(records, columns=columns)
    # one curve per (model, setting): the measurement on most examples, then the newest
    keep = data.sort_values(["n", "timestamp"]).groupby(["model", "setting", "fraction"], sort=True).tail(1)
    return keep.sort_values(["model", "setting", "fraction"]).reset_index(drop=True)


def figure_deletion_curves(inputs: FigureInputs) -> plt.Figure:
    data = deletion_data(inputs.rows)
    if data.empty:
        raise SkipFigure("no deletion rows yet (run a *-interp suite)")
    models, settings = sorted(data["model"].unique()), sorted(data["setting"].unique())
    palette = dict(zip(settings, sns.color_palette(n_colors=len(settings)), strict=True))
    grid = sns.relplot(
        data=data,
        x="fraction",
        y="accuracy",
        hue="setting",
        hue_order=settings,
        palette=palette,
        col="model",
        col_order=models,
        col_wrap=min(3, len(models)),
        kind="line",
        marker="o",
        height=2.8,
        aspect=1.1,
        errorbar=None,
        facet_kws={"sharey": True},
    )
    for model, ax in grid.axes_dict.items():  # 95% bands of each curve
        for setting, curve in data[data["model"] == model].groupby("setting", sort=True):
            curve = curve.sort_values("fraction")
            if curve["low"].notna().all():
                ax.fill_between(
                    curve["fraction"], curve["low"], curve["high"], color=palette[setting], alpha=0.15, lw=0
                )
    grid.set_axis_labels("fraction removed / inserted", "accuracy (95% bands)")
    grid.set_titles("{col_name}")
    grid.legend.set_title(None)
    return grid.figure


# ----------------------------------------------------------------------------------------- robust accuracy


def pgd_curve_data(rows: pd.DataFrame) -> pd.DataFrame:
    """(model, eps, steps, restarts, robust_accuracy) of every row a plugin puts on the robust-accuracy curves
    (PGD rows, the diagnostics checklist's step and eps sweeps)."""
    picked, points = curve_rows(rows, "robust")
    records = [
        _curve_record(row, float(p["eps"]), int(p["steps"]), int(p.get("restarts", 1)), str(row["plugin"]))
        for (_, row), p in zip(picked.iterrows(), points, strict=True)
    ]
    data = pd.DataFrame(
        records,
        columns=["model", "eps", "steps", "restarts", "robust_accuracy", "low", "high", "n", "source", "timestamp"],
    )
    keep = data.sort_values(["n", "timestamp", "source"]).groupby(["model", "eps", "steps", "restarts"]).tail(1)
    return keep.sort_values(["model", "eps", "steps", "restarts"]).reset_index(drop=True)


def _curve_record(row: pd.Series, eps: float, steps: int, restarts: int, source: str) -> dict[str, Any]:
    return {
        "model": f"{row['model']} ({row['precision']})",
        "eps": eps,
        "steps": steps,
        "restarts": restarts,
        "robust_accuracy": float(row["value"]),
        **_bounds(row),
        "n": int(row["n"]),
        "source": source,
        "timestamp": row["timestamp"],
    }


def _curves(data: pd.DataFrame, vary: str, fixed: str) -> pd.DataFrame:
    """Per model, the points where ``vary`` takes >= 2 values at the most covered value of ``fixed``."""
    parts = []
    for _, group in data[data["restarts"] == 1].groupby("model", sort=True):
        counts = group.groupby(fixed)[vary].nunique()
        counts = counts[counts >= 2]
        if len(counts):
            best = counts.sort_index().idxmax()
            parts.append(group[group[fixed] == best])
    return pd.concat(parts, ignore_index=True) if parts else data.iloc[0:0]


def _robust_accuracy_lines(data: pd.DataFrame, x: str) -> tuple[plt.Figure, plt.Axes]:
    """One robust-accuracy line per label (model and fixed setting) against ``x``."""
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    hue_order = sorted(data["label"].unique())
    palette = dict(zip(hue_order, sns.color_palette(n_colors=len(hue_order)), strict=True))
    sns.lineplot(
        data=data,
        x=x,
        y="robust_accuracy",
        hue="label",
        hue_order=hue_order,
        palette=palette,
        marker="o",
        ax=ax,
        errorbar=None,
    )
    _error_bars(ax, data, x, "robust_accuracy", "label", palette)
    return fig, ax


def figure_robust_vs_steps(inputs: FigureInputs) -> plt.Figure:
    data = _curves(pgd_curve_data(inputs.rows), "steps", "eps")
    if data.empty:
        raise SkipFigure("no model has PGD rows at two or more step counts yet (run the cifar10-diagnostics suite)")
    data = data.assign(label=[f"{m}, ε={format_eps(e)}" for m, e in zip(data["model"], data["eps"], strict=True)])
    fig, ax = _robust_accuracy_lines(data, "steps")
    ax.set_xscale("log")
    ax.set_xticks(sorted(data["steps"].unique()))
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("PGD steps (1 restart)")
    ax.set_ylabel("robust accuracy (95% intervals)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Robust accuracy vs PGD steps (should level off, not keep falling)")
    ax.legend(fontsize=7)
    return fig


def figure_robust_vs_eps(inputs: FigureInputs) -> plt.Figure:
    data = _curves(pgd_curve_data(inputs.rows), "eps", "steps")
    if data.empty:
        raise SkipFigure("no model has PGD rows at two or more epsilons yet (run the cifar10-diagnostics suite)")
    data = data.assign(
        eps255=data["eps"] * 255, label=[f"{m}, {s} steps" for m, s in zip(data["model"], data["steps"], strict=True)]
    )
    fig, ax = _robust_accuracy_lines(data, "eps255")
    ax.set_xlabel("ε × 255 (L∞)")
    ax.set_ylabel("robust accuracy (95% intervals)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Robust accuracy vs ε (must reach ~0 for large ε)")
    ax.legend(fontsize=7)
    return fig


# ----------------------------------------------------------------------------------------- CAM grid


def _pets3_models(cards: dict[str, dict[str, Any]]) -> tuple[str, str]:
    pets = {name: c for name, c in sorted(cards.items()) if c.get("dataset") == "pets3"}
    standard = [n for n, c in pets.items() if c.get("method") == "standard"]
    topgap = [n for n, c in pets.items() if c.get("method") == "topgap"]
    if not standard or not topgap:
        raise SkipFigure("needs a standard and a Top-GAP pets3 model in the zoo")
    return standard[0], topgap[0]


def _load_zoo_model(card: dict[str, Any]):
    """The card's model with its weights (one file or byte parts, sha256-checked), in eval mode.

    Missing weights raise ``SkipFigure`` with the reason (a results-only checkout draws no CAMs).
    """
    from bench.models.weights import is_split, read_parts
    from bench.models.zoo import build_from_card, load_weights, weights_path

    folder = Path(card["_card_path"]).parent
    files = [folder / name for name in card["weights"]] if is_split(card) else [weights_path(card, folder)]
    absent = [f for f in files if not f.exists()]
    if absent:
        raise SkipFigure(f"needs the weights of {card.get('name', folder.name)}: {absent[0]} is not there")
    model = build_from_card(card)
    if is_split(card):
        model.load_state_dict(read_parts(card, folder))
    else:
        load_weights(model, files[0], card.get("sha256"))
    return model.eval()


def pick_images(data, n_images: int) -> list[int]:
    """Dataset indices of the first images of each class (dataset order), about ``n_images`` in all, grouped by class.

    Datasets with object masks only offer images whose mask is not empty.

    Example:
        >>> pick_images(load_dataset("pets3", "test"), 6)  # doctest: +SKIP
        [0, 3, 1, 2, 5, 7]
    """
    per_class = max(1, n_images // data.num_classes)
    labels = data.labels.numpy()
    usable = np.ones(len(labels), bool) if data.masks is None else (data.masks.flatten(1).sum(1) > 0).numpy()
    chosen = [int(i) for c in range(data.num_classes) for i in np.flatnonzero((labels == c) & usable)[:per_class]]
    return chosen[:n_images]


def cam_grid_data(inputs: FigureInputs, n_images: int = CAM_GRID_IMAGES) -> dict[str, Any]:
    import torch

    from bench.data.base import MissingDataError, load_dataset
    from bench.interp.cams import compute_cams

    standard_name, topgap_name = _pets3_models(inputs.cards)
    try:
        data = load_dataset("pets3", "test", inputs.data_root)
    except MissingDataError as err:
        raise SkipFigure(f"needs the pets3 data: {err}") from None
    batch = data.batch(torch.tensor(pick_images(data, n_images)))
    maps = {}
    for label, name, method in (
        ("standard · Grad-CAM", standard_name, "gradcam"),
        ("Top-GAP · own CAM", topgap_name, "native"),
    ):
        model = _load_zoo_model(inputs.cards[name])
        maps[f"{label}\n({name})"] = compute_cams(model, batch.x, batch.y, method).numpy()
    images = batch.x.permute(0, 2, 3, 1).contiguous().numpy()
    return {
        "images": images,
        "masks": batch.mask.numpy(),
        "labels": [data.classes[int(y)] for y in batch.y],
        "maps": maps,
    }


def model_cam_data(
    card: dict[str, Any], data_root: str | os.PathLike | None, n_images: int = MODEL_CAM_IMAGES
) -> dict[str, Any]:
    """CAMs of one zoo model on the first test images of its dataset's first classes, for its model page.

    The model's own CAM when it has one (Top-GAP), else Grad-CAM at the last backbone stage; each of the true
    class. ``SkipFigure`` (with the reason) when the data root or the weights are not here. Computed on one CPU
    thread, so that the same weights give the same bytes.

    Example:
        >>> grid = model_cam_data(read_cards()["topgap_cnn"], "/data", 4)  # doctest: +SKIP
        >>> grid["images"].shape, list(grid["maps"])
        ((4, 32, 32, 3), ['own CAM (Top-GAP)'])
    """
    import torch

    from bench.data.base import MissingDataError, load_dataset, resolve_data_root
    from bench.interp.cams import compute_cams, resolve_method

    dataset = card.get("dataset", "?")
    try:
        root = resolve_data_root(data_root)
        if root is None:  # not the embedded sample: the page shows the same images wherever it is built
            raise MissingDataError("no data root given (--data-root or RIBENCH_DATA)")
        data = load_dataset(dataset, "test", root)
    except MissingDataError as err:
        raise SkipFigure(f"needs the {dataset} test data: {err}") from None
    model = _load_zoo_model(card)
    batch = data.batch(torch.tensor(pick_images(data, n_images)))
    method = resolve_method(model, "auto")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            predicted = model(batch.x).argmax(1)
        maps = compute_cams(model, batch.x, batch.y, method).numpy()
    finally:
        torch.set_num_threads(threads)
    label = "own CAM (Top-GAP)" if method == "native" else "Grad-CAM (last stage)"
    names = [
        data.classes[int(y)] + ("" if p == y else f"\n(predicted {data.classes[int(p)]})")
        for y, p in zip(batch.y, predicted, strict=True)
    ]
    return {
        "images": batch.x.permute(0, 2, 3, 1).contiguous().numpy(),
        "masks": None if batch.mask is None else batch.mask.numpy(),
        "labels": names,
        "maps": {label: maps},
        "title": f"{card.get('name', '')}: {dataset} test images, CAM of the true class",
    }


def figure_cam_grid(inputs: FigureInputs) -> plt.Figure:
    return draw_cam_grid(cam_grid_data(inputs))


def draw_cam_grid(grid: dict[str, Any]) -> plt.Figure:
    """One row per image: the image (with its object mask outline when ``grid["masks"]`` is given), then each CAM."""
    masks = grid.get("masks")
    n, columns = len(grid["images"]), ["image + mask" if masks is not None else "image", *grid["maps"]]
    fig, axes = plt.subplots(n, len(columns), figsize=(2.0 * len(columns), 2.0 * n), squeeze=False)
    for r in range(n):
        for c, title in enumerate(columns):
            ax = axes[r, c]
            ax.imshow(grid["images"][r], interpolation="nearest")
            if c:
                ax.imshow(grid["maps"][title][r], cmap="jet", alpha=0.5, vmin=0, vmax=1, interpolation="bilinear")
            if masks is not None:
                ax.contour(masks[r], levels=[0.5], colors="white", linewidths=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=8)
            if c == 0:
                ax.set_ylabel(grid["labels"][r], fontsize=8)
    fig.suptitle(grid.get("title", "pets3 test images: CAMs with the object mask outline (white)"), fontsize=9)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------- entry point

# ----------------------------------------------------------------------------------------- lambda sweep

SWEEP_SPEC = "ribench-lambda-sweep.yaml"
SWEEP_SERIES = {"Top-GAP k=64": "o-", "GAP control k=256": "s"}  # row label -> marker (a line for the sweep)


def lambda_sweep_data(inputs: FigureInputs) -> pd.DataFrame:
    """One record per (row of the λ-sweep table, accuracy column): the table is the one source of the numbers."""
    table = build_table(load_spec(SPEC_DIR / SWEEP_SPEC), inputs.rows, inputs.cards, read_failures(inputs.zoo))
    metrics = [(str(m["label"]), "accuracy" in str(m["metric"])) for m in table.spec["metrics"]]
    records = []
    rows = zip(table.row_labels, table.filters, table.cells, table.models, strict=True)
    for cells, card_filter, line, models in rows:
        lam = card_filter.get("hyperparameters.lambda_l1")
        if cells[0] not in SWEEP_SERIES or lam is None:
            continue
        for (label, is_accuracy), cell in zip(metrics, line, strict=True):
            if not is_accuracy:
                continue
            records.append(
                {
                    "series": cells[0],
                    "lambda": float(lam),
                    "metric": label,
                    "value": np.nan if cell.ours is None else cell.ours,
                    "low": np.nan if cell.low is None else cell.low,
                    "high": np.nan if cell.high is None else cell.high,
                    "stopped": "not trained" in models,
                }
            )
    return pd.DataFrame(records, columns=["series", "lambda", "metric", "value", "low", "high", "stopped"])


def figure_lambda_sweep(inputs: FigureInputs) -> plt.Figure:
    data = lambda_sweep_data(inputs)
    trained = data[~data["stopped"] & data["value"].notna()]
    if trained.empty:
        raise SkipFigure("no Top-GAP cnn trained from scratch on standard_cnn's recipe has clean or attack rows yet")
    metrics = list(dict.fromkeys(data["metric"]))
    palette = dict(zip(metrics, sns.color_palette(n_colors=len(metrics)), strict=True))
    fig, ax = plt.subplots(figsize=(6.2, 4.0))
    for (series, metric), group in trained.groupby(["series", "metric"], sort=True):
        group = group.sort_values("lambda")
        below, above = (group["value"] - group["low"]).clip(lower=0), (group["high"] - group["value"]).clip(lower=0)
        ax.errorbar(
            group["lambda"],
            group["value"],
            yerr=[below.fillna(0), above.fillna(0)],
            fmt=SWEEP_SERIES[series],
            color=palette[metric],
            capsize=2,
            lw=1,
            ms=4,
            mfc="white" if series != "Top-GAP k=64" else palette[metric],
            label=metric if series == "Top-GAP k=64" else f"{metric} ({series})",
        )
    for lam in sorted(data.loc[data["stopped"], "lambda"].unique()):
        ax.plot([lam], [0.0], marker="x", color="black", ms=7, ls="none")
        ax.annotate("diverged", (lam, 0.0), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7)
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.0)
    ax.set_xlabel("λ (ℓ1 weight, mean reduction; sum-λ = λ / 2560)")
    ax.set_ylabel("accuracy on CIFAR-10 test ↑, 95% intervals")
    ax.set_title("Top-GAP λ sweep, small CNN from scratch (L∞ ε = 8/255; hollow: GAP control)")
    ax.legend(fontsize=7, ncol=2)
    return fig


FIGURES: dict[str, Callable[[FigureInputs], plt.Figure]] = {
    "cam_l1_vs_k": figure_cam_l1_vs_k,
    "deletion_curves": figure_deletion_curves,
    "robust_vs_steps": figure_robust_vs_steps,
    "robust_vs_eps": figure_robust_vs_eps,
    "cam_grid_pets3": figure_cam_grid,
    "lambda_sweep": figure_lambda_sweep,
}


def write_figures(
    results: str | os.PathLike | None = None,
    out_dir: str | os.PathLike = "leaderboards/figures",
    zoo: str | os.PathLike | None = None,
    data_root: str | os.PathLike | None = None,
    only: list[str] | None = None,
) -> list[FigureOutcome]:
    """Draw every figure whose inputs exist; return what was written and why the others were skipped."""
    unknown = sorted(set(only or []) - set(FIGURES))
    if unknown:
        raise ReportError(f"unknown figure(s) {', '.join(unknown)} (choose from {', '.join(FIGURES)})")
    cards = read_cards(zoo)
    rows, _ = current_rows(ResultsStore(results).read(), cards)
    inputs = FigureInputs(sorted_rows(rows) if not rows.empty else rows, cards, zoo, data_root)
    outcomes = []
    for name, draw in FIGURES.items():
        if only and name not in only:
            continue
        _style()
        try:
            outcomes.append(FigureOutcome(name, save_figure(draw(inputs), Path(out_dir), name)))
        except SkipFigure as reason:
            plt.close("all")
            outcomes.append(FigureOutcome(name, [], str(reason)))
    return outcomes
