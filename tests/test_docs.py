"""Every ``poisonguard`` command shown in README.md and docs/*.md runs as written.

The convention (also on docs/design.md's "House rules"):

- Executed: in fenced blocks labelled ``bash``, ``sh``, ``shell``, ``console`` or left
  unlabelled, every line whose first word (after an optional ``$ `` prompt and
  ``VAR=value`` prefixes) is ``poisonguard``. Lines ending in ``\\`` are joined with the
  next. In ``console`` blocks only ``$ `` lines are commands (the rest is output).
  The line runs under ``bash -c`` (pipes, ``$(...)``, ``# comments`` work), with
  ``poisonguard`` being this checkout.
- Not executed: ``text`` blocks (synopses with ``[--optional]`` parts), ``python``,
  ``json``, ``toml``... blocks, and lines that do not start with ``poisonguard``.
- A block right after ``<!-- docs-test: skip (reason) -->`` is not executed: only for
  long-running servers.
- Each page runs in a fresh temporary folder, commands in page order (a command may
  use files an earlier one wrote), with ``HOME`` and ``POISONGUARD_LEDGER`` in that
  folder (no other ``POISONGUARD_*`` variable set) and the fixture files of
  :data:`FIXTURES` present. The bare word ``DATA`` means ``data.csv``.
- A command passes when it exits 0 or 1 (1: a gate or a verification failed, a
  legitimate outcome) and prints no traceback. Exit 2 (bad usage or input) fails.

Plain lines (no pipe, redirection, ``$``, ``;`` or ``&``, no ``VAR=`` prefix) run in this
process through typer's ``CliRunner`` (one import of the package for all of them);
the others run under ``bash -c`` with a ``poisonguard`` on ``PATH`` that is this
checkout.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import struct
import subprocess
import sys
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine
from typer.testing import CliRunner

from poisonguard.cli import app

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN_LANGUAGES = {"", "bash", "sh", "shell", "console"}
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->")
FENCE = re.compile(r"^\s*```\s*(?P<lang>[\w-]*)\s*$")
ENV_PREFIX = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*=(?:\"[^\"]*\"|'[^']*'|\$\([^)]*\)|\S+)\s+)*")
PER_COMMAND_TIMEOUT = 300
SHELL_SYNTAX = re.compile(r"[|;&<>`$]")

#: Files present in every page's folder (all built from scikit-learn's wine, 178 rows,
#: label column ``label``; see :func:`write_fixtures`).
FIXTURES = ("data.csv", "data.parquet", "train.csv", "train.parquet", "trusted.parquet",
            "batch.csv", "batch.parquet", "vendor.csv", "vendor-v2.csv", "model.pt",
            "model.safetensors", "parts/")  # parts/: data.parquet as a folder of 2 files


def _is_command(line: str) -> bool:
    rest = line[ENV_PREFIX.match(line).end():]  # type: ignore[union-attr]
    return rest.split(" ", 1)[0] == "poisonguard"


def page_commands(text: str) -> list[tuple[int, str]]:
    """(line number, command) of every executed command of a page, in order."""
    out: list[tuple[int, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        lang = fence.group("lang").lower()
        skipped = i > 0 and SKIP.search(lines[i - 1]) is not None
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip().startswith("```")),
                   len(lines))
        if lang in RUN_LANGUAGES and not skipped:
            out += _block_commands(lines[i + 1:end], first=i + 2, console=lang == "console")
        i = end + 1
    return out


def _block_commands(block: list[str], *, first: int, console: bool) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    k = 0
    while k < len(block):
        start, line = first + k, block[k].strip()
        while line.endswith("\\") and k + 1 < len(block):
            k += 1
            line = line[:-1].rstrip() + " " + block[k].strip()
        k += 1
        if console:
            if not line.startswith("$ "):
                continue
            line = line[2:].strip()
        if _is_command(line):
            out.append((start, re.sub(r"\bDATA\b", "data.csv", line)))
    return out


def write_fixtures(folder: Path) -> None:
    """The files of :data:`FIXTURES`, small enough that every command runs in seconds."""
    wine = load_wine(as_frame=True)
    table = wine.frame.drop(columns="target").astype("float32")
    table["label"] = [f"class_{t}" for t in wine.target]
    for name in ("data", "train", "vendor"):
        table.to_csv(folder / f"{name}.csv", index=False)
    for name in ("data", "train", "trusted"):
        table.to_parquet(folder / f"{name}.parquet", index=False)
    (folder / "parts").mkdir()
    for k, half in enumerate((table.iloc[:89], table.iloc[89:])):
        half.to_parquet(folder / "parts" / f"part-{k:05d}.parquet", index=False)
    rng = np.random.default_rng(0)
    batch = table.copy()
    batch["alcohol"] = batch["alcohol"] + rng.normal(2.0, 0.5, len(batch)).astype("float32")
    batch.to_csv(folder / "batch.csv", index=False)
    batch.to_parquet(folder / "batch.parquet", index=False)
    v2 = table.drop(index=[3]).copy()  # one row removed
    v2.loc[10, "alcohol"] = 99.0  # one changed
    v2 = pd.concat([v2, table.iloc[[5]].assign(magnesium=1.0)], ignore_index=True)  # one added
    v2.to_csv(folder / "vendor-v2.csv", index=False)
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    header += b" " * (-len(header) % 8)
    (folder / "model.safetensors").write_bytes(
        struct.pack("<Q", len(header)) + header + np.zeros(2, "<f4").tobytes())
    import torch

    torch.save({"w": torch.zeros(2)}, folder / "model.pt")


def _env(folder: Path) -> dict[str, str]:
    bin_dir = folder / ".bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "poisonguard"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m poisonguard "$@"\n')
    shim.chmod(0o755)
    env = dict(os.environ)
    for name in [k for k in env if k.startswith("POISONGUARD_")]:
        del env[name]  # the page's folder holds every store (ledger, service database)
    env.update(HOME=str(folder), PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
               PYTHONPATH=f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}".rstrip(os.pathsep),
               POISONGUARD_LEDGER=str(folder / "ledger.sqlite"), OMP_NUM_THREADS="1",
               COLUMNS="120")
    return env


def run_command(command: str, folder: Path, env: dict[str, str]) -> tuple[int, str]:
    """Exit code and output of one documented command, run in ``folder``."""
    words = shlex.split(command, comments=True)
    if SHELL_SYNTAX.search(" ".join(words)) or words[0] != "poisonguard":
        done = subprocess.run(["bash", "-c", command], cwd=folder, env=env, text=True,
                              capture_output=True, timeout=PER_COMMAND_TIMEOUT)
        return done.returncode, done.stdout + done.stderr
    result = CliRunner().invoke(app, words[1:], env={"COLUMNS": "120"})
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        exc = result.exception
        output += "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return result.exit_code, output


def test_the_parser_follows_the_convention() -> None:
    page = "\n".join([
        "```bash", "poisonguard scan DATA --out s/  # note", "pip install x",
        "poisonguard clean a.csv \\", "    --out b.csv", "```",
        "```text", "poisonguard scan DATA [--label COL]", "```",
        "<!-- docs-test: skip (a server) -->", "```bash", "poisonguard serve", "```",
        "```console", "$ K=$(cat k) poisonguard verify x", "poisonguard output line", "```",
        "```", "poisonguard ledger show", "```",
    ])
    assert [c for _, c in page_commands(page)] == [
        "poisonguard scan data.csv --out s/  # note", "poisonguard clean a.csv --out b.csv",
        "K=$(cat k) poisonguard verify x", "poisonguard ledger show"]


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_every_command_of_the_page_runs(page: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    commands = page_commands(page.read_text(encoding="utf-8"))
    if not commands:
        return
    write_fixtures(tmp_path)
    env = _env(tmp_path)
    monkeypatch.chdir(tmp_path)
    for name in [k for k in os.environ if k.startswith("POISONGUARD_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("POISONGUARD_LEDGER", env["POISONGUARD_LEDGER"])
    monkeypatch.setenv("HOME", str(tmp_path))
    for line_no, command in commands:
        code, output = run_command(command, tmp_path, env)
        where = f"{page.name}:{line_no}: {command}"
        assert code in (0, 1), f"{where} exited {code}\n{output[-1500:]}"
        assert "Traceback" not in output, f"{where} printed a traceback\n{output}"
