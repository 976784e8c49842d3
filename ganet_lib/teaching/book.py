"""A run's executed notebooks as static HTML pages with an index: a book to read without running.

`ganet book --run RUN --out DIR` renders RUN/notebooks/NN_*.ipynb (what `./run_all.sh` executed)
with nbconvert's HTML exporter. Figures are notebook outputs, so they are embedded in the pages
(data URIs): the folder can be copied or published as it is. The index lists every page with its
title and first paragraph, and the run's data and profile.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from ganet_lib.errors import KitInputError
from ganet_lib.files import atomic_folder


def _title_and_summary(notebook: dict, fallback: str) -> tuple[str, str]:
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            lines = [line for line in text.split("\n")]
            title = next((line.lstrip("# ").strip() for line in lines if line.startswith("#")), fallback)
            paragraph = []
            for line in lines[1:]:
                if line.strip() == "" and paragraph:
                    break
                if line.strip() and not line.startswith("#"):
                    paragraph.append(line.strip())
            return title, _plain_text(" ".join(paragraph))
    return fallback, ""


def _plain_text(markdown: str, limit: int = 300) -> str:
    """A markdown paragraph as plain text for the index: links to their text, no emphasis, code or maths marks."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    text = re.sub(r"[*`$]", "", text).replace("\\in", "in")
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."


def write_book(run_dir: Path | str, out_dir: Path | str) -> Path:
    """Render the run's executed notebooks into `out_dir` (index.html and one page per notebook),
    written to a temporary sibling folder first and renamed into place; returns index.html."""
    import nbformat
    from nbconvert import HTMLExporter

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    notebooks = sorted((run_dir / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise KitInputError(
            f"'{run_dir / 'notebooks'}' holds no executed notebooks; run `./run_all.sh` for this run first."
        )
    if out_dir.exists() and any(
        p.name != "index.html" and not re.fullmatch(r"\d\d_.*\.html", p.name) for p in out_dir.iterdir()
    ):
        raise KitInputError(f"'{out_dir}' holds files other than an earlier book; choose an empty or new folder.")
    exporter = HTMLExporter(template_name="lab")
    entries = []
    with atomic_folder(out_dir, replace=True) as partial:
        for path in notebooks:
            notebook = nbformat.read(path, as_version=4)
            title, summary = _title_and_summary(json.loads(path.read_text()), path.stem)
            body, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": title}})
            page = f"{path.stem}.html"
            (partial / page).write_text(body)
            entries.append((page, title, summary))
        config = json.loads((run_dir / "config.json").read_text()) if (run_dir / "config.json").is_file() else {}
        items = "\n".join(
            f'<li><a href="{page}">{html.escape(title)}</a><p>{html.escape(summary)}</p></li>'
            for page, title, summary in entries
        )
        (partial / "index.html").write_text(f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>GANet-Seg kit: run {html.escape(run_dir.name)}</title>
<style>body {{ font-family: sans-serif; max-width: 52em; margin: 2em auto; line-height: 1.45; }}
li {{ margin-bottom: 1em; }} p {{ margin: 0.2em 0; color: #444; }}</style>
</head><body>
<h1>GANet-Seg kit: the executed notebooks of run <code>{html.escape(run_dir.name)}</code></h1>
<p>Profile <code>{html.escape(str(config.get("profile", "?")))}</code>. Every figure and number on these pages
was computed by the run; the pages are the notebooks as <code>./run_all.sh</code> executed them
(written by <code>ganet book</code>).</p>
<ol>
{items}
</ol>
</body></html>
""")
    return out_dir / "index.html"
