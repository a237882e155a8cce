"""Git clean filter for the paired notebooks: what git stores is the notebook without what running it adds.

    python -m crisscross_core.viz.nbclean notebooks/03_embedding_explorer.ipynb < file > cleaned

Installed by `make setup` (`git config filter.nbclean.clean ...`, `.gitattributes` names the files), with
`pre_save_hook` for the Jupyter server (`.venv/etc/jupyter/jupyter_server_config.d/crisscross-nbclean.json`),
so that running a notebook in JupyterLab leaves `git status` clean:
* `.ipynb`: outputs and execution counts dropped, cell metadata kept to `tags`, notebook metadata to
  `kernelspec` and `jupytext` (the `notebook_metadata_filter` / `cell_metadata_filter` of
  notebooks/jupytext.toml), written in nbformat's layout (sorted keys, indent 1);
* both `.ipynb` and the paired `.py`: empty cells at the end dropped (Shift+Enter on the last cell adds one).
Without a path (or an unknown suffix) the text passes through unchanged.

Why a save hook as well: git trusts a changed file size without asking the filter, so a notebook saved
with its outputs shows as modified in `git status` (though `git diff` is empty) until it is staged. The
hook saves the kit's own notebooks (a `notebooks/` folder with `jupytext.toml`, beside a `.gitattributes`
that names this filter) clean, as git stores them: outputs stay in the open notebook, not on disk.
"""
from __future__ import annotations

import json
import re
import sys

KEEP_NOTEBOOK_META = ("kernelspec", "jupytext")
KEEP_CELL_META = ("tags",)


def _empty(cell: dict) -> bool:
    src = cell.get("source", "")
    return not ("".join(src) if isinstance(src, list) else src).strip()


def clean_ipynb(text: str) -> str:
    nb = clean_notebook(json.loads(text))
    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def clean_notebook(nb: dict) -> dict:
    """The notebook dict (or nbformat NotebookNode) cleaned in place; returned."""
    cells = nb.get("cells", [])
    while cells and _empty(cells[-1]):
        cells.pop()
    for c in cells:
        c["metadata"] = {k: v for k, v in (c.get("metadata") or {}).items() if k in KEEP_CELL_META}
        if c.get("cell_type") == "code":
            c["outputs"], c["execution_count"] = [], None
    meta = nb.get("metadata") or {}
    for k in [k for k in meta if k not in KEEP_NOTEBOOK_META]:
        del meta[k]
    nb["metadata"] = meta
    return nb


def is_kit_notebook(path) -> bool:
    """A notebook of a checkout whose git stores notebooks through this filter."""
    from pathlib import Path
    p = Path(path).resolve()
    attrs = p.parent.parent / ".gitattributes"
    return (p.suffix == ".ipynb" and p.parent.name == "notebooks" and (p.parent / "jupytext.toml").is_file()
            and attrs.is_file() and "filter=nbclean" in attrs.read_text(errors="replace"))


def pre_save_hook(model, path, contents_manager=None, **_kwargs) -> None:
    """Jupyter server ContentsManager.pre_save_hook: save the kit's own notebooks as git stores them."""
    import os
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    root = getattr(contents_manager, "root_dir", "") or ""
    if is_kit_notebook(os.path.join(root, path.lstrip("/"))):
        clean_notebook(model["content"])


_EMPTY_CELL_AT_END = re.compile(r"(\n+# %%(?: \[markdown\])?[ \t]*)+\s*\Z")


def clean_py(text: str) -> str:
    return _EMPTY_CELL_AT_END.sub("", text).rstrip("\n") + "\n" if text.strip() else text


def clean(text: str, path: str = "") -> str:
    if path.endswith(".ipynb"):
        return clean_ipynb(text)
    if path.endswith(".py"):
        return clean_py(text)
    return text


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    data = sys.stdin.buffer.read().decode("utf-8")
    try:
        out = clean(data, argv[0] if argv else "")
    except (ValueError, KeyError, TypeError):   # not a notebook we understand: store it as it is
        out = data
    sys.stdout.buffer.write(out.encode("utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
