"""Write docs/config.md, the config reference, from the config dataclasses' sources.

    python docs/make_config_reference.py           # (re)write docs/config.md
    python docs/make_config_reference.py --check   # exit 1 (naming the page) when docs/config.md is stale

Every config of synthgen is a frozen dataclass whose fields carry a default and a comment (the comment
on the field's line, or the comment lines right above it). This script imports those dataclasses, takes
each field's default from the dataclass itself and its comment from the source (``inspect`` + ``ast`` +
``tokenize``), and renders one table per section: key | default | meaning. It documents whatever fields
exist, so a changed default or comment changes the page, and ``tests/test_docs.py`` fails until the page
is regenerated.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import importlib.util
import inspect
import io
import os
import sys
import tempfile
import textwrap
import tokenize
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)  # run from a checkout without installing

PAGE = os.path.join(REPO, "docs", "config.md")
SCRIPT = "docs/make_config_reference.py"


# --- reading a dataclass's field comments from its source ---------------------------------------------


@dataclass(frozen=True)
class FieldDoc:
    name: str  # the field's name (the config key below its section)
    default: Any  # its default value (default_factory called), or the dataclass type of a nested section
    comment: str  # the field's comment(s) from the source, joined; "" when it has none
    group: str = ""  # the "# --- caption ---" comment line that opens the group this field starts, if any
    nested: type | None = None  # the dataclass of a nested section (data: DataConfig) or of list entries
    many: bool = False  # nested describes the entries of a list (tuple[CodeConfig, ...]), not one section


def _comments_by_class(cls: type) -> dict[str, tuple[str, str]]:
    """{field name: (comment, group caption)} for the fields declared in ``cls``'s own class body."""
    source = textwrap.dedent(inspect.getsource(cls))
    comments: dict[int, str] = {}  # line (1-based, in ``source``) -> comment text without '#'
    code_lines: set[int] = set()  # lines holding a token other than a comment
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
        elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
            code_lines.update(range(tok.start[0], tok.end[0] + 1))
    (klass,) = [n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)]
    out: dict[str, tuple[str, str]] = {}
    for node in klass.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above: list[str] = []  # the comment-only lines right above the field, nearest last
        line = node.lineno - 1
        while line in comments and line not in code_lines:
            above.insert(0, comments[line])
            line -= 1
        trailing = [comments[n] for n in range(node.lineno, (node.end_lineno or node.lineno) + 1) if n in comments]
        group = ""
        if above and (above[0].startswith("---") or trailing):
            # a "# --- caption ---" line, or a block above a field that has its own comment: the block
            # introduces the group of fields that starts here
            group = " ".join(above).strip("- ").strip()
            above = []
        text = " ".join(c for c in above + trailing if not c.startswith(("noqa", "type:")))
        out[node.target.id] = (text, group)
    return out


def field_docs(cls: type) -> list[FieldDoc]:
    """Every dataclass field of ``cls`` (inherited ones too) with its default and its source comment."""
    hints = typing.get_type_hints(cls)
    by_class: dict[type, dict[str, tuple[str, str]]] = {}
    docs = []
    for f in dataclasses.fields(cls):
        owner = next(k for k in cls.__mro__ if f.name in k.__dict__.get("__annotations__", {}))
        if owner not in by_class:
            by_class[owner] = _comments_by_class(owner)
        comment, group = by_class[owner].get(f.name, ("", ""))
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        nested, many = None, False
        hint = hints.get(f.name)
        optional = [a for a in typing.get_args(hint) if a is not type(None)]  # ``X | None``: a section that may be off
        if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(optional) == 1:
            hint = optional[0]
        if dataclasses.is_dataclass(hint):
            nested = hint
        elif typing.get_origin(hint) is tuple:
            args = [a for a in typing.get_args(hint) if a is not Ellipsis]
            if len(args) == 1 and dataclasses.is_dataclass(args[0]):
                nested, many = args[0], True
        docs.append(FieldDoc(f.name, default, comment, group, nested, many))
    return docs


# --- rendering -----------------------------------------------------------------------------------------


def yaml_value(value: Any) -> str:
    """A default as it is written in a YAML config or a --set (``true``, ``""``, ``[0.01]``, ``{}``)."""
    if value is dataclasses.MISSING:
        return "(required)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '""' if value == "" else value
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {yaml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def cell(text: str) -> str:
    """Text safe inside one Markdown table cell: pipes escaped, ``<`` outside code spans not read as HTML."""
    parts = text.replace("\n", " ").replace("|", "\\|").split("`")
    return "`".join(p if i % 2 else p.replace("<", "&lt;") for i, p in enumerate(parts))


@dataclass(frozen=True)
class Table:
    title: str  # the heading of the table
    prefix: str  # the keys' prefix, e.g. "train." ("" for flat configs)
    cls: type  # the dataclass documented
    intro: str = ""  # one line under the heading
    # nested sections documented in another table: dataclass -> (its key prefix, its heading's anchor)
    elsewhere: dict[type, tuple[str, str]] = field(default_factory=dict)
    same_as: str = ""  # a section with another section's keys (data_b: data's): its title, instead of rows


def anchor(title: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    keep = "".join(c for c in title.lower() if c.isalnum() or c in " -_")
    return "#" + keep.replace(" ", "-")


def render_table(table: Table) -> list[str]:
    """The Markdown lines of one section's table (heading, intro, rows)."""
    lines = [f"### {table.title}", ""]
    if table.intro:
        lines += [table.intro, ""]
    if table.same_as:
        return lines + [f"The keys of [{table.same_as}]({anchor(table.same_as)}), under `{table.prefix}`.", ""]
    docs = field_docs(table.cls)
    if not docs:
        return lines + ["No options.", ""]
    lines += ["| key | default | meaning |", "|---|---|---|"]
    for doc in docs:
        if doc.group:
            lines.append(f"| **{cell(doc.group)}** | | |")
        key = f"`{table.prefix}{doc.name}`"
        if doc.nested is not None and not doc.many:
            where = table.elsewhere.get(doc.nested)
            see = f"the `{where[0]}*` keys of [{doc.nested.__name__}]({where[1]})" if where else ""
            meaning = "; ".join(t for t in (doc.comment, see) if t)
            lines.append(f"| `{table.prefix}{doc.name}.*` | (section) | {cell(meaning)} |")
            continue
        default = f"`{cell(yaml_value(doc.default))}`"
        lines.append(f"| {key} | {default} | {cell(doc.comment)} |")
    return lines + [""]


def sentence(comment: str) -> str:
    """A field comment as a sentence under a heading."""
    if not comment:
        return ""
    first = comment.split(" ", 1)[0]
    return (comment if any(c in first for c in "._/") else comment[:1].upper() + comment[1:]) + "."


def _missing_comments(tables: list[Table]) -> list[str]:
    return [
        f"{t.cls.__module__}.{t.cls.__qualname__}.{d.name}"
        for t in tables
        for d in field_docs(t.cls)
        if not d.comment and not (d.nested is not None and not d.many and d.nested in t.elsewhere)
    ]


# --- what is documented ---------------------------------------------------------------------------------


def _kind(spec: Any) -> str:
    """What a registered model makes, for its options table's intro."""
    if spec.translation:
        return "image -> image, " + ("on pairs" if spec.paired else "unpaired domains")
    return "class-conditional" if spec.conditional else "unconditional"


def _classifier_job_config() -> type:
    """jobs/train_classifier.py's ClassifierJobConfig (a script, not a package: loaded from its file)."""
    key = "job_train_classifier"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, os.path.join(REPO, "jobs", "train_classifier.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
    return sys.modules[key].ClassifierJobConfig


def chapters() -> list[tuple[str, str, list[Table]]]:
    """(chapter heading, intro paragraph, tables) in page order."""
    from synthgen.config import CodeConfig, DataConfig, ExperimentConfig, ModelConfig
    from synthgen.evaluate.config import EvalConfig
    from synthgen.invert.encoder import EncoderConfig as encoder_config
    from synthgen.models.registry import MODELS
    from synthgen.pipeline import PipelineConfig
    from synthgen.sample.config import SampleConfig

    job_config = _classifier_job_config()

    arch = [
        Table(
            f"model.arch of {name}",
            "model.arch.",
            spec.options,
            f"With `model.name: {name}` ({_kind(spec)}"
            f"{', InfoGAN codes and the auxiliary classifier supported' if spec.codes else ''}).",
        )
        for name, spec in sorted(MODELS.items())
    ]
    codes = Table("model.codes entries", "", CodeConfig, "Each entry of the `model.codes` list: one InfoGAN code.")
    # the training config's sections, in its order; the model section is followed by its entries and options
    training: list[Table] = []
    experiment_sections: dict[type, tuple[str, str]] = {}
    for doc in field_docs(ExperimentConfig):
        same = experiment_sections.get(doc.nested, ("", ""))[0].rstrip(".")  # data_b: data's keys again
        training.append(Table(doc.name, f"{doc.name}.", doc.nested, sentence(doc.comment), same_as=same))
        experiment_sections.setdefault(doc.nested, (f"{doc.name}.", anchor(doc.name)))
        if doc.nested is ModelConfig:
            training += [codes, *arch]
    # the evaluation config: its top-level keys, then each nested section but the shared data section
    nested = [d for d in field_docs(EvalConfig) if d.nested is not None and not d.many and d.nested is not DataConfig]
    eval_sections = {DataConfig: experiment_sections[DataConfig]}
    eval_sections |= {d.nested: (f"{d.name}.", anchor(d.name)) for d in nested}
    evaluation = [
        Table("evaluate", "", EvalConfig, "Top-level keys (`evaluate.` in a pipeline config).", eval_sections),
        *[Table(d.name, f"{d.name}.", d.nested, sentence(d.comment)) for d in nested],
    ]
    pipeline_sections = dict(experiment_sections)
    pipeline_sections[EvalConfig] = ("evaluate.", anchor("evaluate"))
    pipeline_sections[SampleConfig] = ("sample.", anchor("sample"))
    job_sections = {DataConfig: experiment_sections[DataConfig]}
    return [
        (
            "Training: `synthgen train`",
            "A YAML file with four sections (e.g. `jobs/configs/fashion_mnist.yaml`); "
            "`--set section.key=value` overrides any key.",
            training,
        ),
        (
            "Sampling: `synthgen sample`",
            "A flat YAML (e.g. `jobs/configs/sample.yaml`), `--set key=value`, or the command's flags "
            "(`--num-samples` sets `num_samples`); in a pipeline config these keys sit under `sample.`.",
            [Table("sample", "", SampleConfig)],
        ),
        (
            "Encoder: `synthgen train-encoder`",
            "A flat YAML or `--set key=value`.",
            [Table("train-encoder", "", encoder_config)],
        ),
        (
            "Evaluation: `synthgen evaluate`",
            "A YAML file (e.g. `jobs/configs/evaluate.yaml`) or `--set key=value` / `--set section.key=value`; "
            "in a pipeline config these keys sit under `evaluate.`.",
            evaluation,
        ),
        (
            "Pipeline: `synthgen pipeline` / `jobs/pipeline.py`",
            "One YAML (e.g. `jobs/configs/pipeline.yaml`) holding the three stages' configs; the checkpoint "
            "joining them comes from training.",
            [Table("pipeline", "", PipelineConfig, "", pipeline_sections)],
        ),
        (
            "Classifier job: `jobs/train_classifier.py`",
            "A YAML (e.g. `jobs/configs/train_classifier.yaml`) or `--set key=value`.",
            [Table("train_classifier", "", job_config, "", job_sections)],
        ),
    ]


def render() -> str:
    """The whole page."""
    parts = [
        "# Config reference",
        "",
        f"<!-- GENERATED by {SCRIPT} from the config dataclasses' field comments: do not edit by hand; -->",
        f"<!-- change the comment in the source, then run `python {SCRIPT}`. -->",
        "",
        "Unknown keys are rejected with the list of valid ones; `--dry-run` prints the resolved config of any "
        "command; every run folder and checkpoint keeps the config it was made with (`config.yaml`). "
        "Defaults are written as in YAML.",
        "",
    ]
    contents, body, every_table = [], [], []
    for heading, intro, tables in chapters():
        contents.append(f"- [{heading}]({anchor(heading)})")
        body += [f"## {heading}", "", intro, ""]
        for table in tables:
            body += render_table(table)
            every_table.append(table)
    missing = _missing_comments(every_table)
    if missing:
        raise SystemExit(f"{SCRIPT}: these config fields have no comment in their source; add one: {missing}")
    return "\n".join(parts + contents + [""] + body).rstrip("\n") + "\n"


def write_atomically(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and os.replace."""
    fd, tmp = tempfile.mkstemp(prefix=".config.md.", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv: list[str] | None = None, render_page: Callable[[], str] = render) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the page differs from what it would write")
    parser.add_argument("--out", default=PAGE, help="the page to write or check (default docs/config.md)")
    args = parser.parse_args(argv)
    text = render_page()
    if args.check:
        try:
            with open(args.out, encoding="utf-8") as fh:
                current = fh.read()
        except FileNotFoundError:
            current = None
        if current != text:
            print(f"{os.path.relpath(args.out)} is stale: run `python {SCRIPT}` and commit the page", file=sys.stderr)
            return 1
        return 0
    write_atomically(args.out, text)
    print(f"wrote {os.path.relpath(args.out)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
