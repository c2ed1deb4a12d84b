"""report.html: one self-contained page (images as base64 PNG data URIs, curves as inline SVG).

Sections: the metric table with its anchors; a per-class grid of samples; for a checkpoint with InfoGAN codes,
one grid per code varying that code across columns (z, class and the other codes fixed per row); a few samples
beside their nearest real training images in judge features (to spot memorisation); the training loss curves
and sample grids over time when the run folder is known; earlier evaluations from metrics.jsonl.
Nothing is fetched from the network, so the page opens offline.
"""

from __future__ import annotations

import base64
import glob
import html
import io
import json
import math
import os
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
from PIL import Image

from synthgen.evaluate.context import EvalContext, PerClassColumn, ReportLine, fmt
from synthgen.evaluate.features import nearest_neighbors
from synthgen.evaluate.metrics import METRICS

_GRID_RE = re.compile(r"^grid-(\d+)\.png$")
CODE_GRID_ROWS = 8  # rows of a code grid: generated samples 0..7 of the evaluation seed (label i % K)


def png_data_uri(image: np.ndarray | Image.Image) -> str:
    """``data:image/png;base64,...`` of a PIL image or a uint8 array [C, H, W] / [H, W]."""
    if not isinstance(image, Image.Image):
        arr = np.asarray(image, dtype=np.uint8)
        if arr.ndim == 3:
            arr = arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)  # [H, W] or [H, W, 3]
        image = Image.fromarray(np.ascontiguousarray(arr))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def tile_row(images: np.ndarray, pad: int = 2) -> np.ndarray:
    """Tile uint8 images [N, C, H, W] side by side with ``pad`` px gaps: uint8 [C, H, N*(W+pad)-pad]."""
    n, c, h, w = images.shape
    out = np.full((c, h, n * (w + pad) - pad), 255, dtype=np.uint8)
    for i in range(n):
        out[:, :, i * (w + pad) : i * (w + pad) + w] = images[i]
    return out


def read_jsonl(path: str) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file; unreadable lines (e.g. a torn last line) are skipped."""
    rows = []
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(row, dict):
                    rows.append(row)
    return rows


def loss_curve_svg(
    rows: list[dict[str, Any]], keys: tuple[str, ...] = ("d_loss", "g_loss"), width: int = 640, height: int = 260
) -> str:
    """Inline SVG line chart of ``keys`` against ``step`` (rows lacking them are skipped); "" if none."""
    colors = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
    series = {}
    for key in keys:
        pts = [
            (float(r["step"]), float(r[key]))
            for r in rows
            if isinstance(r.get("step"), (int, float))
            and isinstance(r.get(key), (int, float))
            and math.isfinite(float(r[key]))
        ]
        if pts:
            series[key] = sorted(pts)
    if not series:
        return ""
    xs = [p[0] for s in series.values() for p in s]
    ys = [p[1] for s in series.values() for p in s]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1
    left, right, top, bottom = 56, 12, 12, 34
    pw, ph = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="curve" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="training losses">',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>',
    ]
    for i in range(5):  # horizontal grid lines with y labels
        y = y0 + (y1 - y0) * i / 4
        parts.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#e4e4e4"/>'
            f'<text x="{left - 6}" y="{sy(y) + 4:.1f}" text-anchor="end" font-size="11">{y:.3g}</text>'
        )
    for x in (x0, (x0 + x1) / 2, x1):
        parts.append(f'<text x="{sx(x):.1f}" y="{height - 14}" text-anchor="middle" font-size="11">{x:.0f}</text>')
    parts.append(f'<text x="{left + pw / 2:.0f}" y="{height - 2}" text-anchor="middle" font-size="11">step</text>')
    for i, (key, pts) in enumerate(series.items()):
        color = colors[i % len(colors)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        parts.append(
            f'<polyline class="series" data-key="{html.escape(key)}" fill="none" stroke="{color}" '
            f'stroke-width="1.6" points="{coords}"/>'
        )
        parts.append(
            f'<text x="{left + 10 + 90 * i}" y="{top + 16}" font-size="12" fill="{color}">{html.escape(key)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def training_grids(run_dir: str, max_grids: int) -> list[tuple[int, str]]:
    """Up to ``max_grids`` (step, data URI) of ``<run_dir>/grids/grid-NNNNNN.png``, evenly spaced, last included."""
    found = []
    for path in glob.glob(os.path.join(run_dir, "grids", "grid-*.png")):
        m = _GRID_RE.match(os.path.basename(path))
        if m:
            found.append((int(m.group(1)), path))
    found.sort()
    if len(found) > max_grids:
        picks = (
            sorted({round(i * (len(found) - 1) / (max_grids - 1)) for i in range(max_grids)})
            if max_grids > 1
            else [len(found) - 1]
        )
        found = [found[i] for i in picks]
    out = []
    for step, path in found:
        try:
            with Image.open(path) as img:
                out.append((step, png_data_uri(img.copy())))
        except OSError:
            continue  # a grid being written right now; skip it
    return out


def summary_rows(rows: Iterable[dict[str, Any]]) -> list[ReportLine]:
    """(metric, value, anchor, note) lines of a metric table: each row's metric formats its own lines."""
    out: list[ReportLine] = []
    for row in rows:
        metric = METRICS.get(str(row.get("metric")))
        if metric is None:
            continue  # a metric this synthgen does not have: left out of the table, still in metrics.jsonl
        try:
            out += metric.summary(row.get("results") or {}, row.get("settings") or {})
        except (KeyError, TypeError, ValueError):
            continue  # a row of another synthgen version: left out of the table, still in metrics.jsonl
    return out


def format_table(rows: list[dict[str, Any]]) -> str:
    """A compact plain-text metric table for the terminal."""
    lines = [ReportLine("metric", "value", "anchor", "note"), *summary_rows(rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(3)]
    text = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}" for a, b, c, d in lines]
    text.insert(1, "-" * max(len(t) for t in text))
    return "\n".join(text)


def _img(uri: str, cls: str = "px", title: str = "") -> str:
    return f'<img class="{cls}" src="{uri}" alt="{html.escape(title)}" title="{html.escape(title)}">'


def _per_class_table(rows: list[dict[str, Any]], names: tuple[str, ...]) -> str:
    cols: list[PerClassColumn] = []
    for row in rows:
        metric = METRICS.get(str(row.get("metric")))
        if metric is not None:
            try:
                cols += metric.per_class(row.get("results") or {})
            except (KeyError, TypeError, ValueError, AttributeError):
                continue  # a row of another synthgen version: no per-class column
    if not cols:
        return ""
    head = "".join(f"<th>{html.escape(c)}</th>" for c, _ in cols)
    body = "".join(
        "<tr><td>"
        + html.escape(n)
        + "</td>"
        + "".join(f"<td>{fmt(v.get(n), 3) if v.get(n) is not None else '–'}</td>" for _, v in cols)
        + "</tr>"
        for n in names
    )
    return f"<h2>Per class</h2><table><tr><th>class</th>{head}</tr>{body}</table>"


def _samples_section(ctx: EvalContext) -> str:
    gen, per = ctx.generated(), ctx.cfg.report.samples_per_class
    rows = []
    for c, name in enumerate(ctx.source.class_names):
        imgs = gen.images[gen.labels == c][:per]
        if len(imgs):
            grid = _img(png_data_uri(tile_row(imgs)), "px grid", name)
            rows.append(f"<tr><th>{html.escape(name)}</th><td>{grid}</td></tr>")
    return "<h2>Samples per class</h2><table class='samples'>" + "".join(rows) + "</table>"


def code_grid(
    generator: Any, code_index: int, seed: int, num_classes: int, rows: int = CODE_GRID_ROWS
) -> tuple[list[float], np.ndarray]:
    """One InfoGAN code swept with everything else fixed: row r is generated sample r (its z, label r % K and
    other code values, as ``synthgen evaluate`` draws them) with code ``code_index`` set to each column's value.

    Args:
        generator: a generator with ``codes`` (eval mode).
        code_index: which of ``generator.codes``.
        seed: the evaluation's latent seed.
        num_classes: K.
        rows: samples shown.

    Returns:
        (column values, uint8 [rows, cols, C, H, W]).
    """
    import torch

    from synthgen.models.codes import sweep_values
    from synthgen.pixels import to_uint8
    from synthgen.sample.prior import prior_images

    code = generator.codes[code_index]
    values = sweep_values(code)  # [cols]
    ids = np.repeat(np.arange(rows, dtype=np.int64), len(values))  # [rows * cols]: each row's sample, cols times
    fixed = {code.name: np.tile(np.asarray(values, dtype=np.float32), rows)}  # [rows * cols]
    with torch.inference_mode():
        images = to_uint8(
            prior_images(generator.eval(), ids, torch.from_numpy(ids % num_classes), seed, fixed_codes=fixed)
        )  # [rows * cols, C, H, W]
    return values, images.numpy().reshape(rows, len(values), *images.shape[1:])


def _codes_section(source: Any) -> str:
    """One grid per InfoGAN code of a checkpoint's generator ("" for shards or a generator without codes)."""
    generator = getattr(source, "generator", None)
    codes = tuple(getattr(generator, "codes", ()))
    if source.kind != "checkpoint" or not codes:
        return ""
    names, parts = (
        source.class_names,
        [
            "<h2>InfoGAN codes</h2><p>Each grid varies one code across columns; "
            "each row keeps its z, class and other codes fixed.</p>"
        ],
    )
    for k, code in enumerate(codes):
        values, grid = code_grid(generator, k, source.seed, len(names))  # grid: [R, cols, C, H, W]
        body = "".join(
            f"<tr><th>{html.escape(names[r % len(names)])}</th><td colspan='{len(values)}'>"
            f"{_img(png_data_uri(tile_row(grid[r])), 'px grid', f'{code.name} sweep, row {r}')}</td></tr>"
            for r in range(len(grid))
        )
        columns = " · ".join(f"{v:g}" for v in values)
        parts.append(
            f"<h3 class='code-grid' data-code='{html.escape(code.name)}'>{html.escape(code.name)} "
            f"({html.escape(code.kind)})</h3><table class='samples'><tr><th>{html.escape(code.name)} ="
            f"</th><th colspan='{len(values)}'>{columns}</th></tr>{body}</table>"
        )
    return "".join(parts)


def _nearest_section(ctx: EvalContext) -> str:
    rc = ctx.cfg.report
    gen = ctx.generated()
    q = min(rc.nearest_queries, len(gen))
    k = min(rc.nearest_k, len(ctx.real_train))
    train_f = ctx.train_features()
    idx, dist = nearest_neighbors(ctx.gen_features()[:q], train_f, k)
    # Memorisation check: a generator that copies training images sits closer to them than unseen real
    # (test) images do; compare median nearest-train distances of both.
    m = min(1000, len(gen), len(ctx.real_test))
    _, d_gen = nearest_neighbors(ctx.gen_features()[:m], train_f, 1)
    _, d_test = nearest_neighbors(ctx.test_features()[:m], train_f, 1)
    med_gen, med_test = float(np.median(d_gen)), float(np.median(d_test))
    rows = []
    names = ctx.source.class_names
    for i in range(q):
        cells = "".join(
            f"<td>{_img(png_data_uri(ctx.real_train.images[j]), 'px nn', names[ctx.real_train.labels[j]])}"
            f"<br><small>{d:.2f}</small></td>"
            for j, d in zip(idx[i], dist[i])
        )
        rows.append(
            f"<tr><td>{_img(png_data_uri(gen.images[i]), 'px nn', names[gen.labels[i]])}"
            f"<br><small>{html.escape(names[gen.labels[i]])}</small></td><td class='sep'></td>{cells}</tr>"
        )
    return (
        f"<h2>Nearest real training images (judge features)</h2>"
        f"<p>Median distance to the nearest training image: generated {med_gen:.3f}, real test {med_test:.3f} "
        f"(ratio {med_gen / med_test if med_test > 0 else float('nan'):.2f}; "
        "well below 1 suggests memorisation).</p>"
        f"<table class='nn'><tr><th>generated</th><th></th><th colspan='{k}'>nearest {k} training images "
        f"(distance)</th></tr>{''.join(rows)}</table>"
    )


def _training_section(run_dir: str | None, max_grids: int) -> str:
    if not run_dir:
        return ""
    svg = loss_curve_svg(read_jsonl(os.path.join(run_dir, "metrics.jsonl")))
    grids = training_grids(run_dir, max_grids)
    if not svg and not grids:
        return ""
    parts = [f"<h2>Training run</h2><p><code>{html.escape(run_dir)}</code></p>"]
    if svg:
        parts.append(f"<h3>Losses</h3>{svg}")
    if grids:
        parts.append(
            "<h3>Samples over training</h3><div class='grids'>"
            + "".join(
                f"<figure>{_img(uri, 'px tgrid', f'step {s}')}<figcaption>step {s}</figcaption></figure>"
                for s, uri in grids
            )
            + "</div>"
        )
    return "".join(parts)


def _history_section(history: list[dict[str, Any]]) -> str:
    rows = [h for h in history if "metric" in h and "results" in h][-60:]
    if not rows:
        return ""
    body = "".join(
        f"<tr><td>{html.escape(str(h.get('created', '')))}</td><td>{html.escape(str(h['metric']))}</td>"
        f"<td>{html.escape(str((h.get('source') or {}).get('step', '')))}</td>"
        f"<td>{html.escape('; '.join(f'{a}: {b}' for a, b, _, _ in summary_rows([h])))}</td></tr>"
        for h in rows
    )
    head = "<tr><th>when</th><th>metric</th><th>step</th><th>values</th></tr>"
    return f"<h2>All evaluations in metrics.jsonl</h2><table>{head}{body}</table>"


CSS = """body{font-family:system-ui,sans-serif;margin:24px;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:8px 0 20px}
td,th{border-bottom:1px solid #e2e2e2;padding:4px 10px;text-align:left;vertical-align:middle}
img.px{image-rendering:pixelated}img.grid{height:56px}img.nn{width:56px;height:56px}img.tgrid{width:280px}
.grids{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}figcaption{font-size:12px;text-align:center}
td.sep{border-left:2px solid #999;padding:0}small{color:#666}.meta{color:#555;font-size:13px}code{font-size:12px}"""


def render_report(ctx: EvalContext, rows: list[dict[str, Any]], history: list[dict[str, Any]]) -> str:
    """The whole report page for this evaluation's metric ``rows`` (+ earlier ``history`` rows)."""
    table = "".join(
        f"<tr><td>{html.escape(a)}</td><td><b>{html.escape(b)}</b></td><td>{html.escape(c)}</td>"
        f"<td>{html.escape(d)}</td></tr>"
        for a, b, c, d in summary_rows(rows)
    )
    ident = ctx.source.identity
    meta = (
        f"source: <code>{html.escape(str(ident.get('path')))}</code> ({ident.get('kind')}"
        + (
            f", step {ident.get('step')}, digest {str(ident.get('digest', ''))[:12]}"
            if ident.get("kind") == "checkpoint"
            else ""
        )
        + f") · judge {html.escape(ctx.judge.key)} (real test accuracy {ctx.judge.test_accuracy:.4f}) · "
        f"{len(ctx.generated())} generated vs {len(ctx.real_test)} real test images"
    )
    sections = [
        f"<h1>synthgen evaluation</h1><p class='meta'>{meta}</p>",
        f"<h2>Metrics</h2><table><tr><th>metric</th><th>value</th><th>anchor</th><th>note</th></tr>{table}</table>",
        _per_class_table(rows, ctx.source.class_names),
        _samples_section(ctx),
        _codes_section(ctx.source),
        _nearest_section(ctx),
        _training_section(ctx.source.run_dir, ctx.cfg.report.max_grids),
        _history_section(history),
    ]
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>synthgen evaluation</title>"
        f"<style>{CSS}</style></head><body>{''.join(sections)}</body></html>\n"
    )
