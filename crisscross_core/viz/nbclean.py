"""Git clean filter for the paired notebooks: what git stores is the notebook without what running it adds.

    python -m crisscross_core.viz.nbclean notebooks/03_embedding_explorer.ipynb < file > cleaned

Installed by `make setup` (`git config filter.nbclean.clean ...`, `.gitattributes` names the files), so
that running a notebook in JupyterLab leaves `git status` clean:
* `.ipynb`: outputs and execution counts dropped, cell metadata kept to `tags`, notebook metadata to
  `kernelspec` and `jupytext` (the `notebook_metadata_filter` / `cell_metadata_filter` of
  notebooks/jupytext.toml), written in nbformat's layout (sorted keys, indent 1);
* both `.ipynb` and the paired `.py`: empty cells at the end dropped (Shift+Enter on the last cell adds one).
Without a path (or an unknown suffix) the text passes through unchanged.
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
    nb = json.loads(text)
    cells = nb.get("cells", [])
    while cells and _empty(cells[-1]):
        cells.pop()
    for c in cells:
        c["metadata"] = {k: v for k, v in (c.get("metadata") or {}).items() if k in KEEP_CELL_META}
        if c.get("cell_type") == "code":
            c["outputs"], c["execution_count"] = [], None
    nb["metadata"] = {k: v for k, v in (nb.get("metadata") or {}).items() if k in KEEP_NOTEBOOK_META}
    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


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
