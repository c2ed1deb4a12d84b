"""The documentation is checked like code: the config reference is current, every command line in README.md
and docs/*.md parses with the real CLI parser and names files that exist, and the README's quickstart runs.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from synthgen.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
PAGES = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]
SHELL_FENCES = ("bash", "sh", "shell", "console")
SEPARATORS = {"&&", "||", ";", "|", "&"}


def load_generator():
    """docs/make_config_reference.py as a module (docs/ is a folder of files, not a package)."""
    name = "make_config_reference"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, DOCS / "make_config_reference.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
    return sys.modules[name]


def shell_blocks(text: str) -> list[list[str]]:
    """The lines of every ```bash (sh, shell, console) fenced block of a Markdown page."""
    blocks, current, inside = [], None, False
    for line in text.splitlines():
        fence = re.match(r"^\s*```(\w*)\s*$", line)
        if fence and not inside:
            inside, current = True, [] if fence.group(1) in SHELL_FENCES else None
        elif fence and inside:
            if current is not None:
                blocks.append(current)
            inside, current = False, None
        elif inside and current is not None:
            current.append(line)
    return blocks


def shell_commands(lines: list[str]) -> list[str]:
    """A block's commands as text: continuation lines joined, a heredoc kept with its command."""
    commands, pending, heredoc_end = [], "", None
    for line in lines:
        if heredoc_end is not None:
            commands[-1] += "\n" + line
            if line.strip() == heredoc_end:
                heredoc_end = None
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        command = (pending + line).strip()
        pending = ""
        if not command or command.startswith("#"):
            continue
        commands.append(command)
        heredoc = re.search(r"<<-?\s*'?\"?(\w+)'?\"?", command)
        if heredoc:
            heredoc_end = heredoc.group(1)
    return commands


def simple_commands(command: str) -> list[list[str]]:
    """``a && b | c & d`` -> [[a...], [b...], [c...], [d...]] (comments dropped, heredoc bodies ignored)."""
    lexer = shlex.shlex(command.split("\n", 1)[0], posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    out, current = [], []
    for token in lexer:
        if token in SEPARATORS:
            out.append(current)
            current = []
        else:
            current.append(token)
    out.append(current)
    return [argv for argv in out if argv]


def doc_command_lines() -> list[tuple[str, list[str]]]:
    """(page name, argv) of every simple command in the shell blocks of README.md and docs/*.md."""
    found = []
    for page in PAGES:
        for block in shell_blocks(page.read_text(encoding="utf-8")):
            for command in shell_commands(block):
                for argv in simple_commands(command):
                    while argv and re.match(r"^\w+=", argv[0]):  # VAR=value prefixes
                        argv = argv[1:]
                    if argv:
                        found.append((page.relative_to(REPO).as_posix(), argv))
    return found


# --- 1. the config reference ----------------------------------------------------------------------------


def test_the_config_reference_is_current():
    gen = load_generator()
    page = (DOCS / "config.md").read_text(encoding="utf-8")
    assert gen.render() == page, "docs/config.md is stale: run `python docs/make_config_reference.py`"


def write_module(path: Path, body: str, monkeypatch):
    """Write and import a throwaway module (registered in sys.modules for this test only)."""
    path.write_text(body, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, path.stem, module)  # inspect.getsource finds a class's file through it
    spec.loader.exec_module(module)
    return module


OPTIONS_SOURCE = """
from dataclasses import dataclass


@dataclass(frozen=True)
class Base:
    width: int = 64  # WIDTH_COMMENT


@dataclass(frozen=True)
class Opts(Base):
    mode: str = (
        "tanh"  # tanh | linear, the last op
    )
    # a field explained above it,
    # over two lines
    sizes: tuple[int, ...] = (1, 2)
    # --- a group of options ---
    rate: float = 0.5  # a rate
"""


def test_the_reference_takes_defaults_and_comments_from_the_source_and_follows_a_changed_comment(tmp_path, monkeypatch):
    gen = load_generator()
    source = OPTIONS_SOURCE.replace("WIDTH_COMMENT", "base width")
    before = write_module(tmp_path / "opts_before.py", source, monkeypatch)
    source = OPTIONS_SOURCE.replace("WIDTH_COMMENT", "generator width")
    after = write_module(tmp_path / "opts_after.py", source, monkeypatch)
    rows = gen.render_table(gen.Table("opts", "model.arch.", before.Opts))
    assert "| `model.arch.width` | `64` | base width |" in rows  # inherited from Base
    assert "| `model.arch.mode` | `tanh` | tanh \\| linear, the last op |" in rows  # comment inside the parentheses
    assert "| `model.arch.sizes` | `[1, 2]` | a field explained above it, over two lines |" in rows
    assert "| **a group of options** | | |" in rows and "| `model.arch.rate` | `0.5` | a rate |" in rows
    changed = gen.render_table(gen.Table("opts", "model.arch.", after.Opts))
    assert "| `model.arch.width` | `64` | generator width |" in changed and changed != rows


def test_check_mode_names_a_stale_page_and_a_write_makes_it_current(tmp_path, capsys):
    gen = load_generator()
    page = tmp_path / "config.md"
    page.write_text((DOCS / "config.md").read_text(encoding="utf-8").replace("latent size", "latent width"))
    assert gen.main(["--check", "--out", str(page)]) == 1
    assert "config.md is stale" in capsys.readouterr().err
    assert gen.main(["--out", str(page)]) == 0
    assert gen.main(["--check", "--out", str(page)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.md"]  # the temporary file was renamed


# --- 2. command lines in the docs -----------------------------------------------------------------------


def test_every_synthgen_command_line_in_the_docs_parses_with_the_real_cli():
    parser = build_parser()
    commands = [(page, argv) for page, argv in doc_command_lines() if argv[0] == "synthgen"]
    assert len(commands) >= 30  # the pages show many; a broken extractor finds none
    assert {argv[1] for _, argv in commands} >= {"train", "sample", "verify", "evaluate", "train-encoder", "pipeline"}
    for page, argv in commands:
        if {"-h", "--help", "--version"} & set(argv):
            continue
        try:
            args = parser.parse_args(argv[1:])
        except SystemExit:
            pytest.fail(f"{page}: `{shlex.join(argv)}` does not parse with synthgen's argument parser")
        assert args.command == argv[1]


def test_every_config_file_and_script_named_in_the_docs_exists():
    named = []
    for page, argv in doc_command_lines():
        for i, token in enumerate(argv):
            value = argv[i + 1] if token == "--config" and i + 1 < len(argv) else ""
            value = token.split("=", 1)[1] if token.startswith("--config=") else value
            if value:
                named.append((page, value))
            if re.match(r"^(jobs|experiments|benchmarks|deploy|docs)/[\w./-]+\.(py|sh)$", token):
                named.append((page, token))
    assert any(path.endswith(".yaml") for _, path in named) and any(path.endswith(".py") for _, path in named)
    missing = sorted({f"{page}: {path}" for page, path in named if not (REPO / path).is_file()})
    assert not missing, f"the docs name files that do not exist: {missing}"


def heading_anchors(page: Path) -> set[str]:
    """GitHub's anchors of a Markdown page's headings (lowercased, punctuation dropped, spaces to hyphens)."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    titles = re.findall(r"^#{1,6}\s+(.*?)\s*$", text, flags=re.M)
    return {"".join(c for c in t.lower() if c.isalnum() or c in " -_").replace(" ", "-") for t in titles}


def test_every_relative_link_in_the_docs_points_at_a_file_and_heading_that_exist():
    broken, checked = [], 0
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        for link in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+:", link):
                continue
            path, _, fragment = link.partition("#")
            target = (page.parent / path).resolve() if path else page
            checked += 1
            if not target.exists():
                broken.append(f"{page.relative_to(REPO)}: {link} (no such file)")
            elif fragment and target.suffix == ".md" and fragment not in heading_anchors(target):
                broken.append(f"{page.relative_to(REPO)}: {link} (no such heading)")
    assert checked >= 30 and not broken, broken


# --- 3. the README's quickstart runs ---------------------------------------------------------------------

TINY_TRAIN = [
    "train.num_workers=1",  # the commands and their hand-offs are under test here; DDP is test_train's contract
    "data.max_images=400",
    "train.steps=4",
    "train.checkpoint_every=2",
    "train.sample_every=4",
    "train.log_every=2",
    "train.batch_size=8",
    "model.arch.g_channels=8",
    "model.arch.d_channels=8",
]
TINY_SAMPLE = ["--num-samples", "256", "--images-per-shard", "128", "--batch-size", "128"]


def quickstart_commands() -> list[str]:
    """The commands of the first shell block under the README's "## Quickstart" heading."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    (block, *_) = shell_blocks(section)
    return shell_commands(block)


def tiny(command: str) -> str:
    """The quickstart command at test size: argparse keeps the last value, so appended flags win."""
    first, _, rest = command.partition("\n")
    code, _, comment = first.partition("  #")
    if code.startswith("synthgen train"):
        code += " " + " ".join(f"--set {s}" for s in TINY_TRAIN)
    elif code.startswith("synthgen sample"):
        code += " " + " ".join(TINY_SAMPLE)
    return code + ("\n" + rest if rest else "")


@pytest.mark.slow
@pytest.mark.ray
def test_the_readme_quickstart_runs_end_to_end(tmp_path, cluster_address):
    commands = quickstart_commands()
    kinds = [c.split()[0] if c.split()[0] != "synthgen" else " ".join(c.split()[:2]) for c in commands]
    assert kinds == [
        "synthgen train",
        "synthgen sample",
        "synthgen verify",
        "python",
    ]  # train -> sample -> verify -> load
    assert "DataLoader" in commands[-1]
    (tmp_path / "jobs").symlink_to(REPO / "jobs")  # the quickstart runs from the repository root
    # The commands join the session's shared cluster, as they join a user's `ray start` cluster: a fresh local Ray
    # per command (~8 s each here) is what test_ray_init's and test_sample_driver's CLI runs start
    env = {
        **os.environ,
        "RAY_ADDRESS": cluster_address,
        "PYTHONPATH": str(REPO),
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
    }

    def run(command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )

    results = []
    for command in commands:
        proc = run(tiny(command))
        assert proc.returncode == 0, f"`{tiny(command)}` exited {proc.returncode}:\n{proc.stderr[-4000:]}"
        results.append(proc)

    assert (tmp_path / "runs" / "fashion_mnist_smoke" / "checkpoint-000004" / "model.pt").is_file()
    out = tmp_path / "out" / "quickstart"
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["total"], manifest["num_shards"]) == (256, 2)
    assert len(list((out / "parquet").glob("shard-*.parquet"))) == 2
    assert len(list((out / "png").rglob("*.png"))) == 256  # --format both
    printed = results[-1].stdout.strip().splitlines()[-1]
    shape, names = printed.split(") ", 1)
    assert ast.literal_eval(shape + ")") == (64, 1, 28, 28)
    labels = ast.literal_eval(names)
    assert len(labels) == 4 and set(labels) <= set(manifest["class_names"])

    # the verify step is a real check: a damaged shard makes the same command exit 1
    (verify,) = [c for c in commands if c.startswith("synthgen verify")]
    shard = sorted((out / "parquet").glob("shard-*.parquet"))[0]
    shard.write_bytes(shard.read_bytes()[:-100])
    assert run(verify).returncode == 1
