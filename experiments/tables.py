"""The tables of experiments/*.md and README.md, generated from the result files in experiments/results/.

    python experiments/tables.py            # rewrite every table block from the JSON results
    python experiments/tables.py --check    # exit 1 naming the blocks that differ from what the JSON gives

A block is the text between ``<!-- begin: table NAME -->`` and ``<!-- end: table NAME -->``, NAME a table of
experiments/tables.yaml (kinds ``seeds``, ``arms``, ``runs``, ``headline``, ``transfer``: the classes below). Only
blocks are rewritten. Result files and their layout: experiments/README.md. Statistics: ``uplift_table.summarise``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
SPECS = HERE / "tables.yaml"
for _folder in (str(ROOT), str(HERE)):
    if _folder not in sys.path:
        sys.path.insert(0, _folder)  # run from a checkout; the sibling uplift_table

from uplift_table import check_pair, summarise  # noqa: E402

from synthgen.errors import ConfigError  # noqa: E402


class TableError(Exception):
    """A result file or a markdown block that cannot be made into a table."""


@dataclass(frozen=True)
class Seeds:
    """One arm against its real-only baseline (``real``, or each file's ``real_only_accuracy``): a row per seed."""

    arm: str
    real: str = ""
    choosing: tuple[int, ...] = ()  # seeds the arm's settings were chosen on; the others confirm


@dataclass(frozen=True)
class Arm:
    label: str
    arm: str
    seeds: tuple[int, ...] = ()  # () = every seed with a file
    minus: str = ""  # another arm: the per-seed difference of their uplifts
    real: str = ""  # the baseline folder, when the arm's files carry no quoted uplift or real_only_accuracy


@dataclass(frozen=True)
class Arms:
    """Several arms: a row each with the per-seed uplifts and their summary."""

    rows: tuple[Arm, ...]


@dataclass(frozen=True)
class Runs:
    """Single runs: a row per (label, result files), a column per (header, file index, key, format). A file index
    ``mean`` summarises the key over all of the row's files (repeats of one run on several seeds): mean ± std (SE);
    ``positive``: how many of them are > 0."""

    columns: tuple[tuple[str, int, str, str], ...]
    rows: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class Transfer:
    """The transfer study of one domain pair: a row per arm (accuracy per seed and over seeds), then the derived
    figures the issue's targets name (``synthgen.evaluate.metrics.transfer``), from ``folder/seedNN.json``."""

    folder: str
    choosing: tuple[int, ...] = ()  # seeds the settings were chosen on; the others confirm
    # folders of later runs of some arms on the same seeds and checkpoint (``transfer.arms``): their arms are
    # added; an arm both hold must agree (the same seed trains an arm the same whatever else runs)
    more: tuple[str, ...] = ()
    # the folder of another translator's study on the same pair, seeds, halves and settings: the arms that involve no
    # translator (TRANSLATOR_FREE_ARMS) come from it, so a new translator runs only its own arms; "" = none
    shared: str = ""


TRANSFER_ARMS = (
    ("source_only", "A as it is"),
    ("source_generic_aug", "A + generic augmentation"),
    ("translated", "A translated into B"),
    ("oracle", "B's own labels (oracle)"),
    ("few_b", "1% of B's labels"),
    ("few_b_plus_translated", "1% of B's labels + translated A"),
    ("few_b_plus_generic", "1% of B's labels + generic-augmented A"),
)
# arms a folder may lack (measured later with transfer.arms): shown when every seed has them
OPTIONAL_TRANSFER_ARMS = (
    ("translated_plus_generic", "A translated into B + generic-augmented A"),
    ("translated_generic_aug", "A translated into B, then generic augmentation"),
)
# the arms whose training sets hold no translated image: the same for any translator of one pair, seed and settings
TRANSLATOR_FREE_ARMS = ("source_only", "source_generic_aug", "oracle", "few_b", "few_b_plus_generic")


@dataclass(frozen=True)
class Headline:
    """One row per setting: (setting, recipe, a Seeds table's name or "" for not measured, its page)."""

    rows: tuple[tuple[str, str, str, str], ...]


def read_json(path: Path) -> dict[str, Any]:
    """A result file as a dict (its path under ``_path``)."""
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TableError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(result, dict):
        raise TableError(f"{path}: a result file holds one JSON object, not {type(result).__name__}")
    return {**result, "_path": str(path)}


def load_arm(root: Path, folder: str) -> dict[int, dict[str, Any]]:
    """``root/folder/seedNN.json`` by seed (``config.seed``, which must match the file name)."""
    paths = sorted((root / folder).glob("seed*.json"))
    if not paths:
        raise TableError(f"{root / folder}: no seedNN.json result files")
    out = {}
    for path in paths:
        result = read_json(path)
        seed = result.get("config", {}).get("seed") if isinstance(result.get("config"), dict) else None
        if not isinstance(seed, int) or path.name != f"seed{seed:02d}.json":
            raise TableError(f"{path}: config.seed must be an integer matching the file name, got {seed!r}")
        if result.get("accuracy") is None and result.get("uplift_points") is None:
            raise TableError(f"{path}: needs an accuracy (or a transcribed uplift_points)")
        out[seed] = result
    return out


def _uplift(arm: dict[str, Any], base: float | None, key: str, quoted: str) -> float | None:
    """The quoted uplift when transcribed, else 100 x (arm - base) when both are known."""
    if arm.get(quoted) is not None:
        return float(arm[quoted])
    if arm.get(key) is None or base is None:
        return None
    return 100.0 * (arm[key] - base)


def seed_rows(spec: Seeds, root: Path) -> list[dict[str, Any]]:
    """A row per seed of ``spec.arm``: both accuracies (None when not recorded) and the uplifts in points."""
    reals = load_arm(root, spec.real) if spec.real else {}
    rows = []
    for seed, arm in sorted(load_arm(root, spec.arm).items()):
        real = reals.get(seed)
        if spec.real and real is None:
            raise TableError(f"{arm['_path']}: no baseline {root / spec.real}/seed{seed:02d}.json")
        if real is not None:
            try:
                check_pair(real, arm)
            except ConfigError as exc:
                raise TableError(str(exc)) from None
        base = real["accuracy"] if real else arm.get("real_only_accuracy")
        row = {"seed": seed, "real_only": base, "arm": arm.get("accuracy"), "rare_real": None}
        row["uplift_points"] = _uplift(arm, base, "accuracy", "uplift_points")
        if row["uplift_points"] is None:
            raise TableError(f"{arm['_path']}: no baseline accuracy to compute the uplift from")
        if real is not None and real.get("rare_accuracy") is not None:
            row["rare_real"], row["rare_arm"] = real["rare_accuracy"], arm.get("rare_accuracy")
            row["rare_uplift_points"] = _uplift(arm, real["rare_accuracy"], "rare_accuracy", "rare_uplift_points")
        rows.append(row)
    return rows


def _num(value: float | None, fmt: str = ".4f") -> str:
    return "" if value is None else format(value, fmt)


def _seed_list(seeds: list[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    runs: list[list[int]] = []
    for s in seeds:
        if runs and s == runs[-1][-1] + 1:
            runs[-1].append(s)
        else:
            runs.append([s])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs)


def mean_std_se(st: dict[str, Any], fmt: str) -> str:
    """``stats`` as ``mean ± std (SE se)`` in ``fmt`` (the spread without a sign; SE ``n/a`` for one value)."""
    plain = fmt.lstrip("+")
    se = "n/a" if st["se"] is None else format(st["se"], plain)
    return f"{format(st['mean'], fmt)} ± {format(st['std'], plain)} (SE {se})"


def summary_text(s: dict[str, Any]) -> str:
    """``stats`` as ``+0.51 ± 0.31 (SE 0.11), 8/9 positive``."""
    se = "n/a" if s["se"] is None else f"{s['se']:.2f}"
    return f"{s['mean']:+.2f} ± {s['std']:.2f} (SE {se}), {s['positive']}/{len(s['values'])} positive"


def render_seeds(spec: Seeds, root: Path) -> str:
    rows = seed_rows(spec, root)
    rare = all(r["rare_real"] is not None for r in rows)
    head = "| seed | real only | + synthetic | uplift (points) |"
    head += " rarest classes: real only | + synthetic | uplift (points) |" if rare else ""
    lines = [head, "|---" * head.count(" |") + "|"]
    for r in rows:
        role = "" if not spec.choosing else " (choosing)" if r["seed"] in spec.choosing else " (confirmation)"
        line = f"| {r['seed']}{role} | {_num(r['real_only'])} | {_num(r['arm'])} | {r['uplift_points']:+.2f} |"
        if rare:
            rare_cells = [
                _num(r["rare_real"], ".3f"),
                _num(r["rare_arm"], ".3f"),
                _num(r["rare_uplift_points"], "+.2f"),
            ]
            line += " " + " | ".join(rare_cells) + " |"
        lines.append(line)
    table = summarise(rows, list(spec.choosing))
    lines.append("")
    for group, name in (("all", "All seeds"), ("confirmation", "Confirmation seeds")):
        if group in table:
            rare_text = ""
            if "rare_uplift_points" in table[group]:
                rare_text = f"; rarest classes {summary_text(table[group]['rare_uplift_points'])}"
            seeds = table[group]["seeds"]
            name = name if len(seeds) > 1 else "Seed"
            lines.append(f"- {name} {_seed_list(seeds)}: {summary_text(table[group]['uplift_points'])}{rare_text}")
    return "\n".join(lines)


def arm_values(row: Arm, root: Path) -> dict[int, float]:
    """Per-seed uplift of ``row`` (minus its ``minus`` arm's) over its seeds."""
    values = {r["seed"]: r["uplift_points"] for r in seed_rows(Seeds(row.arm, row.real), root)}
    if row.minus:
        other = {r["seed"]: r["uplift_points"] for r in seed_rows(Seeds(row.minus, row.real), root)}
        values = {s: v - other[s] for s, v in values.items() if s in other}
    if row.seeds:
        missing = sorted(set(row.seeds) - set(values))
        if missing:
            raise TableError(f"{row.label}: no result for seeds {missing} under {root / row.arm}")
        values = {s: values[s] for s in row.seeds}
    return values


def render_arms(spec: Arms, root: Path) -> str:
    lines = ["| arm | seeds | uplift per seed (points) | mean ± std (SE), positive |", "|---|---|---|---|"]
    for row in spec.rows:
        values = arm_values(row, root)
        s = summarise([{"seed": k, "uplift_points": v} for k, v in values.items()], [])["all"]["uplift_points"]
        per_seed = ", ".join(f"{v:+.2f}" for v in values.values())
        lines.append(f"| {row.label} | {_seed_list(list(values))} | {per_seed} | {summary_text(s)} |")
    return "\n".join(lines)


def lookup(run: dict[str, Any], key: str) -> Any:
    """``run[key]``; else a dotted ``key`` walked into nested dicts (``cascade.steady_img_per_s``); None if absent."""
    if key in run:
        return run[key]
    value: Any = run
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def render_runs(spec: Runs, root: Path) -> str:
    lines = ["| " + " | ".join(["run"] + [c[0] for c in spec.columns]) + " |", "|---" * (len(spec.columns) + 1) + "|"]
    for label, files in spec.rows:
        runs = [read_json(root / f"{name}.json") for name in files]
        cells = [_runs_cell(runs, i, key, fmt) for _, i, key, fmt in spec.columns]
        lines.append("| " + " | ".join([label] + cells) + " |")
    return "\n".join(lines)


def _runs_cell(runs: list[dict[str, Any]], index: int | str, key: str, fmt: str) -> str:
    """One cell of a Runs table: file ``index``'s value, or (``mean`` / ``positive``) a summary over all files."""
    from synthgen.evaluate.stats import stats

    if index in ("mean", "positive"):
        missing = [r["_path"] for r in runs if not isinstance(lookup(r, key), (int, float))]
        if missing:
            raise TableError(f"{', '.join(missing)}: no number under {key!r} to summarise over the row's runs")
    if index == "mean":
        return mean_std_se(stats([lookup(r, key) for r in runs]), fmt)
    if index == "positive":
        return f"{stats([lookup(r, key) for r in runs], signed=True)['positive']}/{len(runs)} > 0"
    return _num(lookup(runs[index], key), fmt) if isinstance(index, int) and index < len(runs) else ""


# the transfer metric's comparisons (synthgen.evaluate.metrics.transfer.derived) and their labels, in table order;
# None: a comparison only the table shows, 100 x (first arm - second arm)
TRANSFER_DERIVED = (
    ("gap_closure", "gap closed by translated A (target >= 0.8)", None),
    ("translated_minus_generic_points", "translated - generic augmentation, points (target >= +10)", None),
    ("few_b_plus_translated_minus_few_b_points", "1% B + translated A - 1% B alone, points", None),
    ("", "1% B + generic A - 1% B alone, points", ("few_b_plus_generic", "few_b")),
    ("oracle_minus_few_b_plus_translated_points", "oracle - (1% B + translated A), points (target <= 5)", None),
    ("translated_plus_generic_minus_generic_points", "(translated + generic A) - generic augmentation, points", None),
    (
        "translated_generic_aug_minus_generic_points",
        "generic-augmented translated A - generic-augmented A, points",
        None,
    ),
)


def transfer_rows(acc: dict[str, list[float]], idx: list[int]) -> list[tuple[str, dict[str, Any]]]:
    """(label, stats over the seeds at positions ``idx``) of every comparison of TRANSFER_DERIVED."""
    from synthgen.evaluate.metrics.transfer import derived
    from synthgen.evaluate.stats import stats

    metric = derived(acc, idx)
    out = []
    for key, label, arms in TRANSFER_DERIVED:
        if arms is None:
            if key in metric:  # a comparison of an optional arm: only where it was measured
                out.append((label, metric[key]))
        else:
            first, second = (np.asarray(acc[a], dtype=np.float64)[idx] for a in arms)
            out.append((label, stats((100 * (first - second)).tolist(), True)))
    return out


def _merge_arms(accuracy: dict[int, dict[str, float]], more: dict[int, dict[str, Any]]) -> None:
    """Add ``more``'s arms to ``accuracy`` (seed -> arm -> accuracy), seed by seed.

    Raises:
        TableError: a seed ``accuracy`` lacks, or an arm both hold with different accuracies (not the same
            checkpoint, seed or settings).
    """
    for seed, run in more.items():
        if seed not in accuracy:
            raise TableError(f"{run['_path']}: seed {seed} is not in the study's folder")
        for arm, value in run["accuracy"].items():
            if arm in accuracy[seed] and abs(accuracy[seed][arm] - value) > 1e-9:
                raise TableError(
                    f"{run['_path']}: {arm} is {value} but the study's seed {seed} has {accuracy[seed][arm]}: "
                    "not the same checkpoint, seed or settings"
                )
            accuracy[seed][arm] = value


def _same_study(run: dict[str, Any], other: dict[str, Any]) -> bool:
    """Whether two seeds' results share halves and metric settings
    (``transfer.arms`` and ``seeds`` aside: an arm of a seed does not depend on them)."""

    def settings(r: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in r["config"].get("settings", {}).items() if k not in ("arms", "seeds")}

    return run.get("halves") == other.get("halves") and settings(run) == settings(other)


def _shared_arms(runs: dict[int, dict[str, Any]], shared: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """``shared``'s results (seed -> result) cut to their translator-free arms, for the seeds of ``runs``.

    Raises:
        TableError: a seed ``shared`` lacks, or another study (halves, settings).
    """
    out = {}
    for seed, run in runs.items():
        other = shared.get(seed)
        if other is None:
            raise TableError(f"{run['_path']}: seed {seed} has no result in the shared folder")
        if not _same_study(run, other):
            raise TableError(f"{run['_path']}: not the halves or settings of {other['_path']}; cannot share its arms")
        out[seed] = {**other, "accuracy": {arm: other["accuracy"][arm] for arm in TRANSLATOR_FREE_ARMS}}
    return out


def render_transfer(spec: Transfer, root: Path) -> str:
    from synthgen.evaluate.stats import stats

    runs = load_arm(root, spec.folder)
    seeds = sorted(runs)
    accuracy = {s: dict(runs[s]["accuracy"]) if isinstance(runs[s]["accuracy"], dict) else {} for s in seeds}
    if spec.shared:  # an arm both hold must agree
        _merge_arms(accuracy, _shared_arms(runs, load_arm(root, spec.shared)))
    for s in seeds:
        if any(arm not in accuracy[s] for arm, _ in TRANSFER_ARMS):
            raise TableError(f"{runs[s]['_path']}: accuracy must hold every arm: {[a for a, _ in TRANSFER_ARMS]}")
    for folder in spec.more:
        _merge_arms(accuracy, load_arm(root, folder))
    head = "| | " + " | ".join(f"seed {s}" + (" (choosing)" if s in spec.choosing else "") for s in seeds)
    lines = [head + " | mean ± std (SE) |", "|---" * (len(seeds) + 2) + "|"]

    def row(label: str, st: dict[str, Any], fmt: str) -> str:
        pos = f", {st['positive']}/{len(st['values'])} > 0" if "positive" in st else ""
        cells = " | ".join(format(v, fmt) for v in st["values"])
        return f"| {label} | {cells} | {mean_std_se(st, fmt)}{pos} |"

    shown = TRANSFER_ARMS + tuple((a, t) for a, t in OPTIONAL_TRANSFER_ARMS if all(a in accuracy[s] for s in seeds))
    acc = {arm: [accuracy[s][arm] for s in seeds] for arm, _ in shown}
    for arm, label in shown:
        lines.append(row(label, stats(acc[arm]), ".4f"))
    for label, st in transfer_rows(acc, list(range(len(seeds)))):
        lines.append(row(label, st, ".3f" if label.startswith("gap") else "+.2f"))
    confirm = [k for k, s in enumerate(seeds) if s not in spec.choosing]
    if spec.choosing and confirm:
        lines += ["", f"- Confirmation seeds {_seed_list([seeds[k] for k in confirm])} alone:"]
        for label, st in transfer_rows(acc, confirm):
            lines.append(f"  {label}: {st['mean']:+.3f} ± {st['std']:.3f}, {st['positive']}/{len(confirm)} > 0")
    return "\n".join(lines)


def render_headline(spec: Headline, root: Path, md_dir: Path, tables: dict[str, Spec]) -> str:
    lines = [
        "| setting | synthetic recipe | uplift (points): mean ± std | SE | positive / seeds | confirmation seeds |",
        "|---|---|---|---|---|---|",
    ]
    for setting, recipe, name, page in spec.rows:
        link = f"[{setting}]({os.path.relpath(HERE / page, md_dir)})"
        if not name:
            lines.append(f"| {link} | {recipe} | not measured | | 0 | |")
            continue
        seeds = tables.get(name)
        if not isinstance(seeds, Seeds):
            raise TableError(f"headline row {setting!r}: {name!r} is not a seeds table")
        table = summarise(seed_rows(seeds, root), list(seeds.choosing))
        s = table["all"]["uplift_points"]
        cell = f"{s['mean']:+.2f} ± {s['std']:.2f}"
        if "rare_uplift_points" in table["all"]:
            cell += f"; rarest classes {table['all']['rare_uplift_points']['mean']:+.2f}"
        conf = table.get("confirmation")
        conf_text = f"{_seed_list(conf['seeds'])}: {summary_text(conf['uplift_points'])}" if conf else ""
        se = "n/a" if s["se"] is None else f"{s['se']:.2f}"
        lines.append(f"| {link} | {recipe} | {cell} | {se} | {s['positive']}/{len(s['values'])} | {conf_text} |")
    return "\n".join(lines)


Spec = Seeds | Arms | Runs | Headline | Transfer
KINDS = {"seeds": Seeds, "arms": Arms, "runs": Runs, "headline": Headline, "transfer": Transfer}


def parse_specs(raw: dict[str, Any]) -> dict[str, Spec]:
    """``{name: {kind: options}}`` (tables.yaml) as spec objects."""
    out: dict[str, Spec] = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict) or len(entry) != 1 or next(iter(entry)) not in KINDS:
            raise TableError(f"table {name!r}: write one of {', '.join(KINDS)} with its options, got {entry!r}")
        kind, options = next(iter(entry.items()))
        try:
            if kind == "seeds":
                out[name] = Seeds(options["arm"], options.get("real", ""), tuple(options.get("choosing", ())))
            elif kind == "arms":
                out[name] = Arms(
                    tuple(
                        Arm(r["label"], r["arm"], tuple(r.get("seeds", ())), r.get("minus", ""), r.get("real", ""))
                        for r in options
                    )
                )
            elif kind == "transfer":
                out[name] = Transfer(
                    options["folder"],
                    tuple(options.get("choosing", ())),
                    tuple(options.get("more", ())),
                    options.get("shared", ""),
                )
            elif kind == "runs":
                columns = tuple(tuple(c) for c in options["columns"])
                out[name] = Runs(columns, tuple((label, tuple(files)) for label, files in options["rows"]))
            else:
                out[name] = Headline(tuple(tuple(r) for r in options))
        except (KeyError, TypeError, ValueError) as exc:
            raise TableError(f"table {name!r}: malformed {kind} options ({exc!r})") from None
    return out


def load_specs(path: Path = SPECS) -> dict[str, Spec]:
    """The tables of ``path`` (experiments/tables.yaml)."""
    return parse_specs(yaml.safe_load(path.read_text(encoding="utf-8")) or {})


def render(name: str, tables: dict[str, Spec], root: Path = RESULTS, md_dir: Path = ROOT) -> str:
    """The generated text of table ``name`` (``md_dir``: the folder of the page it goes in, for links)."""
    if name not in tables:
        raise TableError(f"unknown table {name!r}; tables: {', '.join(sorted(tables))}")
    spec = tables[name]
    if isinstance(spec, Headline):
        return render_headline(spec, root, md_dir, tables)
    renderers = {Seeds: render_seeds, Arms: render_arms, Runs: render_runs, Transfer: render_transfer}
    return renderers[type(spec)](spec, root)


BLOCK = re.compile(r"^(<!-- begin: table ([\w.-]+) -->\n)(.*?)^(<!-- end: table \2 -->)$", re.S | re.M)
BEGIN = re.compile(r"^<!-- begin: table .* -->$", re.M)


def regenerate(
    text: str, md_dir: Path, tables: dict[str, Spec], root: Path = RESULTS, where: str = ""
) -> tuple[str, list[str]]:
    """``text`` with every block regenerated, and the names of the blocks that changed."""
    if len(BLOCK.findall(text)) != len(BEGIN.findall(text)):
        raise TableError(f"{where}: a '<!-- begin: table NAME -->' without its '<!-- end: table NAME -->'")
    changed: list[str] = []

    def one(match: re.Match[str]) -> str:
        try:
            body = render(match[2], tables, root, md_dir) + "\n"
        except TableError as exc:
            raise TableError(f"{where}: {exc}") from None
        if body != match[3]:
            changed.append(match[2])
        return match[1] + body + match[4]

    return BLOCK.sub(one, text), changed


def pages() -> list[Path]:
    """The markdown files that may hold blocks: experiments/*.md and the README."""
    return sorted(HERE.glob("*.md")) + [ROOT / "README.md"]


def update(paths: list[Path], check: bool, tables: dict[str, Spec], root: Path = RESULTS) -> list[str]:
    """Regenerate the blocks of ``paths`` (written atomically unless ``check``); returns ``file: block`` stale."""
    stale = []
    for path in paths:
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        new, changed = regenerate(text, path.parent, tables, root, str(path))
        stale += [f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {n}" for n in changed]
        if changed and not check:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(new)
            os.replace(tmp, path)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a block is stale")
    args = parser.parse_args(argv)
    try:
        stale = update(pages(), args.check, load_specs(), RESULTS)
    except TableError as exc:
        print(f"experiments/tables.py: {exc}", file=sys.stderr)
        return 2
    for name in stale:
        print(f"{'stale' if args.check else 'rewrote'}: {name}", file=sys.stderr)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
