"""The repository's own documentation: every section the code and docs cite exists in the docs the
repository carries (no references to a document users do not have), and the CLI names a mistyped
command."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CITE = re.compile(r"(?:(docs/[\w-]+\.md)|\b(method\.md|deviations\.md|evaluation\.md))?\s*§\s*(\d+(?:\.\d+)*)")
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".sbatch", ".sh", ".txt", ".cfg"}


def tracked_text_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, text=True).stdout.split()
    return [REPO / f for f in out if Path(f).suffix in TEXT_SUFFIXES and (REPO / f).is_file()]


def headings(doc: Path) -> set[str]:
    """Section numbers a doc defines: '## 5. Sampling' -> '5', '### 5.3 The far-apart…' -> '5.3'."""
    nums = set()
    for line in doc.read_text().splitlines():
        m = re.match(r"#+\s+(\d+(?:\.\d+)*)\.?\s", line)
        if m:
            nums.add(m.group(1))
    return nums


def citations() -> list[tuple[Path, int, str, str]]:
    """(file, line, cited doc or '', section) for every '§N' in the repository's text files."""
    found = []
    for f in tracked_text_files():
        if f.name == "test_docs.py":
            continue
        for n, line in enumerate(f.read_text(errors="replace").splitlines(), 1):
            for m in CITE.finditer(line):
                doc = m.group(1) or (f"docs/{m.group(2)}" if m.group(2) else "")
                if not doc and f.parent.name == "docs":
                    doc = f"docs/{f.name}"                      # a doc citing its own sections
                found.append((f.relative_to(REPO), n, doc, m.group(3)))
    return found


def test_no_file_cites_the_private_spec():
    bad = [f"{f}:{n}" for f in tracked_text_files() if f.name != "test_docs.py"
           for n, line in enumerate(f.read_text(errors="replace").splitlines(), 1)
           if re.search(r"\bspec\s*§|crisscross_spec\.md|\bthe spec\b", line)]
    assert not bad, f"{len(bad)} references to the specification users do not have: {bad[:20]}"


def test_every_cited_section_exists_in_the_repositorys_docs():
    missing = []
    for f, n, doc, section in citations():
        if not doc:
            missing.append(f"{f}:{n}: '§{section}' names no document (write docs/method.md §{section})")
            continue
        path = REPO / doc
        if not path.is_file():
            missing.append(f"{f}:{n}: {doc} does not exist")
        elif section not in headings(path):
            missing.append(f"{f}:{n}: {doc} has no section {section}")
    assert not missing, "\n".join(missing[:30])


def test_the_docs_folder_covers_method_deviations_and_protocols():
    for name in ("method.md", "deviations.md", "evaluation.md"):
        assert (REPO / "docs" / name).is_file(), name
    assert {"2.1", "4", "5.2", "5.3", "6.2", "6.3", "7"} <= headings(REPO / "docs" / "method.md")


def test_a_mistyped_command_is_named_with_the_closest_one(capsys):
    from crisscross_core.cli import main
    assert main(["pretrian"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'pretrian'" in err and "did you mean 'pretrain'" in err
