"""A run's executed notebooks as static HTML pages with an index: a book to read without running.

`ganet book --run RUN --out DIR [--student]` renders RUN/notebooks/NN_*.ipynb (what `./run_all.sh`
executed) with nbconvert's HTML exporter (its "lab" template). The pages work offline, on a course
server without internet, so nothing is fetched when a page opens:

- figures are notebook outputs, embedded in the pages (data URIs), each with an alt text: the
  output's own `alt` if it has one, else the figure's title (which `viz.save_figure` writes into
  the PNG it saves) and the section it sits in, else the line of the cell that drew it;
- equations are MathML, written at build time (latex2mathml), which browsers draw without
  MathJax; the template's MathJax, require.js, widget and mermaid scripts are left out;
- a progress bar (a tqdm widget) becomes the line tqdm prints, from the state the run saved.

`--student` gives the student edition's pages: every solution replaced by its stub and hidden
tests removed (`student.student_notebook`), every output as executed. Each page and the index say
which edition they are, how long each notebook ran, on which profile and machine.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import jinja2
import nbformat
from latex2mathml.converter import convert as latex_to_mathml
from nbconvert import HTMLExporter
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
from PIL import Image

from ganet_lib.errors import KitInputError
from ganet_lib.files import atomic_folder
from ganet_lib.run import RunLayout
from ganet_lib.teaching.student import cell_source, student_notebook

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
EDITIONS = {
    False: "teacher's edition: the exercises with their solutions",
    True: "student edition: each exercise's solution replaced by the stub a student fills in",
}
# The lab template without anything it would fetch (require.js, MathJax, the widget renderer and
# mermaid come from CDNs), with a line at the top of each page and alt texts on figures.
PAGE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{% block html_head_js %}{% endblock html_head_js %}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{% block html_head_js_mathjax %}{% endblock html_head_js_mathjax %}
{% block html_head_js_mermaidjs %}{% endblock html_head_js_mermaidjs %}
{% block html_head_css %}<style type="text/css">{{ resources.book_css }}</style>{% endblock html_head_css %}
{% block body_header %}{{ super() }}
<header class="ganet-book">{{ resources.book_header }}</header>
{% endblock body_header %}
{% macro with_alt(rendered, output) -%}
{{ rendered | replace('<img ', '<img alt="%s" ' % (output.metadata.alt | e), 1) }}
{%- endmacro %}
{% block data_png scoped %}{{ with_alt(super(), output) }}{% endblock data_png %}
{% block data_jpg scoped %}{{ with_alt(super(), output) }}{% endblock data_jpg %}
{% block data_svg scoped %}{{ with_alt(super(), output) }}{% endblock data_svg %}
"""
# After the lab theme's CSS. Contrast: the theme's prompts and several code colours fall below WCAG
# AA (4.5:1) on the code cells' #f5f5f5 (axe-core's color-contrast); each is darkened in its own hue.
PAGE_CSS = """
:root { --jp-mirror-editor-comment-color: #3d6363; --jp-mirror-editor-number-color: #006a00;
  --jp-mirror-editor-operator-color: #8000c0; --jp-mirror-editor-meta-color: #8000c0;
  --jp-mirror-editor-atom-color: #3737c8; --jp-mirror-editor-bracket-color: #5c5c42;
  --jp-mirror-editor-error-color: #c00000; --jp-mirror-editor-hr-color: #666666;
  --jp-mirror-editor-quote-color: #006a00; --jp-mirror-editor-variable-3-color: #006b45;
  --jp-cell-inprompt-font-color: #1a5fb4; --jp-cell-outprompt-font-color: #a3432a;
  --jp-cell-prompt-not-active-font-color: #595959; --jp-cell-prompt-not-active-opacity: 1; }
.ganet-book { margin: 1em var(--jp-notebook-padding, 10px); padding: 0.6em 1em; border-left: 4px solid #1a5fb4;
  background: #f0f4fa; font-family: sans-serif; line-height: 1.45; }
math[display="block"] { margin: 0.6em 0; }
math[display="block"] mtd { math-style: normal; }  /* an aligned block's fractions full size, as in TeX */
"""
_FIGURE_FILE = re.compile(r"""figure_path\(\s*["']([^"']+\.(?:png|jpe?g|svg))["']""")


# Equations ---------------------------------------------------------------------------------------


def tex_to_mathml(tex: str, display: str = "inline") -> str:
    """A TeX equation as MathML (the TeX kept as its `alttext`); one latex2mathml cannot read stays
    TeX, in <code>, rather than stop the book."""
    # latex2mathml (3.81) reads an `aligned` block as one line with its & signs shown; an array of
    # right- and left-aligned columns is the same layout, and it reads that as a table.
    table = re.sub(r"\\begin\{(aligned|align\*?|split)\}", r"\\begin{array}{rlrlrl}", tex.strip())
    table = re.sub(r"\\end\{(aligned|align\*?|split)\}", r"\\end{array}", table)
    try:
        mathml = latex_to_mathml(table, display=display)
    except Exception:  # latex2mathml raises its own and Python's errors on TeX it does not know
        return f'<code class="tex">{html.escape(tex)}</code>'
    return mathml.replace("<math ", f'<math alttext="{html.escape(tex.strip())}" ', 1)


class _MathMLRenderer(IPythonRenderer):
    """nbconvert's markdown renderer, with the equations (which it leaves as TeX for MathJax) as MathML."""

    def block_math(self, body: str) -> str:
        return tex_to_mathml(body, display="block")

    def inline_math(self, body: str) -> str:
        return tex_to_mathml(body)

    def latex_environment(self, name: str, body: str) -> str:
        return tex_to_mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", display="block")


def markdown_html(source: str, attachments: dict | None = None) -> str:
    """A markdown cell as HTML, as nbconvert renders it, with its equations as MathML."""
    return MarkdownWithMath(renderer=_MathMLRenderer(escape=False, attachments=attachments or {})).render(source)


class _BookExporter(HTMLExporter):
    """The lab template's HTML with MathML equations (nbconvert's markdown filter, its renderer swapped)."""

    @jinja2.pass_context
    def markdown2html(self, context, source: str) -> str:
        return markdown_html(source, context.get("cell", {}).get("attachments", {}))


# Widgets -----------------------------------------------------------------------------------------


def _widget_text(model_id: str, state: dict) -> str | None:
    """The line a saved widget shows (tqdm's bar: an HBox of a label, a progress bar and a label), as
    tqdm prints it in a terminal; None when the run saved no state for it."""
    model = state.get(model_id)
    if model is None:
        return None
    values = model.get("state", {})
    if model.get("model_name") in ("HBoxModel", "VBoxModel"):
        parts = [_widget_text(child.removeprefix("IPY_MODEL_"), state) for child in values.get("children", [])]
        return " ".join(part for part in parts if part)
    if model.get("model_name") in ("FloatProgressModel", "IntProgressModel"):
        done = values.get("value", 0) / values["max"] if values.get("max") else 0.0
        filled = round(10 * min(max(done, 0.0), 1.0))
        return "|" + "█" * filled + " " * (10 - filled) + "|"
    text = html.unescape(re.sub(r"<[^>]+>", "", str(values.get("value", values.get("description", "")))))
    return text.replace("\u2007", " ").strip()


def without_widgets(notebook: dict) -> dict:
    """`notebook` (changed in place) with each widget output as the text it showed at the end of the
    run: from the widget state the run saved, else the output's text/plain (tqdm's first line)."""
    state = notebook.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).pop(WIDGET_VIEW, None)
            if view is not None:
                text = _widget_text(view.get("model_id", ""), state)
                if text is not None:
                    output["data"]["text/plain"] = text
        cell["outputs"] = [o for o in cell.get("outputs", []) if "data" not in o or o["data"]]
    notebook.get("metadata", {}).pop("widgets", None)
    return notebook


# Alt texts ---------------------------------------------------------------------------------------


def saved_figure_title(path: Path) -> str:
    """The title `viz.save_figure` wrote into a PNG's metadata; '' when the file or title is missing."""
    if not path.is_file() or path.suffix != ".png":
        return ""
    with Image.open(path) as image:
        return getattr(image, "text", {}).get("Title", "").strip()


def figure_alt_text(source: str, section: str, figure_file: str | None, title: str) -> str:
    """An alt text for a figure drawn by a cell: its title and file, else the line that drew it,
    and the section (the nearest heading above) it illustrates."""
    where = f" (section “{section}”)" if section else ""
    if title:
        return f"{title}{where}; saved as {figure_file}" if figure_file else f"{title}{where}"
    if figure_file:
        return f"Figure {figure_file}{where}"
    lines = [line.strip() for line in source.split("\n") if line.strip() and not line.strip().startswith("#")]
    drawing = next((line for line in lines if re.search(r"\b(viz|plt|fig|ax|axes)\b", line)), lines[0] if lines else "")
    return f"Figure{where}, drawn by `{drawing}`"


def add_alt_texts(notebook: dict, figures_dir: Path) -> dict:
    """`notebook` (changed in place) with `alt` in the metadata of every image output that has none.

    The k-th image of a cell is matched to the k-th figure file the cell names (`figure_path("...")`),
    whose saved PNG may carry the figure's title."""
    section = ""
    for cell in notebook["cells"]:
        source = cell_source(cell)
        if cell["cell_type"] == "markdown":
            headings = [line.lstrip("#").strip() for line in source.split("\n") if line.startswith("#")]
            section = headings[-1] if headings else section
            continue
        files = _FIGURE_FILE.findall(source)
        images = [o for o in cell.get("outputs", []) if any(k.startswith("image/") for k in o.get("data", {}))]
        for k, output in enumerate(images):
            metadata = output.setdefault("metadata", {})
            given = metadata.get("alt") or next(
                (metadata[kind].get("alt") for kind in output["data"] if isinstance(metadata.get(kind), dict)), None
            )
            figure_file = files[k] if k < len(files) else None
            title = saved_figure_title(figures_dir / figure_file) if figure_file else ""
            metadata["alt"] = given or figure_alt_text(source, section, figure_file, title)
    return notebook


# Pages -------------------------------------------------------------------------------------------


def _title_and_summary(notebook: dict, fallback: str) -> tuple[str, str]:
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            lines = cell_source(cell).split("\n")
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


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "time not recorded"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def run_machine(run_dir: Path) -> str:
    """The machine the run ran on, as the run recorded it (run_summary.json, else report.md's
    "Machine" section); never this machine's, which may not be the run's."""
    summary = run_dir / "run_summary.json"
    recorded = json.loads(summary.read_text()).get("machine") if summary.is_file() else None
    if recorded:
        return recorded
    report = run_dir / "report.md"
    if report.is_file():
        found = re.search(r"^## Machine\s*\n\s*\n(.+)$", report.read_text(), flags=re.MULTILINE)
        if found:
            return found.group(1).strip()
    return "a machine the run did not record"


def _page_header(edition: str, seconds: float | None, profile: str, machine: str) -> str:
    return (
        f'<p><a href="index.html">Contents</a> · <strong>{html.escape(edition.capitalize())}</strong>.</p>'
        f"<p>This notebook ran in {duration_text(seconds)} (profile <code>{html.escape(profile)}</code>, "
        f"on {html.escape(machine)}).</p>"
    )


def write_book(run_dir: Path | str, out_dir: Path | str, student: bool = False) -> Path:
    """Render the run's executed notebooks into `out_dir` (index.html and one page per notebook),
    written to a temporary sibling folder first and renamed into place; returns index.html.

    `student`: every exercise's solution replaced by its stub, hidden tests removed (outputs kept)."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    layout = RunLayout(run_dir)
    notebooks = sorted(layout.notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise KitInputError(
            f"'{layout.notebooks_dir}' holds no executed notebooks; run `./run_all.sh` for this run first."
        )
    if out_dir.exists() and any(
        p.name != "index.html" and not re.fullmatch(r"\d\d_.*\.html", p.name) for p in out_dir.iterdir()
    ):
        raise KitInputError(f"'{out_dir}' holds files other than an earlier book; choose an empty or new folder.")
    config = json.loads(layout.config_file.read_text()) if layout.config_file.is_file() else {}
    profile, machine, edition = str(config.get("profile", "not recorded")), run_machine(run_dir), EDITIONS[student]
    exporter = _BookExporter(
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({"ganet_book.html.j2": PAGE_TEMPLATE})],
        template_file="ganet_book.html.j2",
    )
    entries = []
    with atomic_folder(out_dir, replace=True) as partial:
        for path in notebooks:
            try:
                notebook = json.loads(path.read_text())
            except json.JSONDecodeError as error:
                raise KitInputError(
                    f"'{path}' is not a readable notebook ({error}); run `./run_all.sh` again."
                ) from None
            seconds = notebook.get("metadata", {}).get("papermill", {}).get("duration")  # before the edition drops it
            title, summary = _title_and_summary(notebook, path.stem)
            notebook = without_widgets(notebook)
            if student:
                notebook, _ = student_notebook(notebook, path.name, keep_outputs=True)
            notebook = add_alt_texts(notebook, layout.figures_dir)
            header = _page_header(edition, seconds, profile, machine)
            body, _ = exporter.from_notebook_node(
                nbformat.reads(json.dumps(notebook), as_version=4),  # sources as strings, as nbconvert expects
                resources={"metadata": {"name": title}, "book_header": header, "book_css": PAGE_CSS},
            )
            page = f"{path.stem}.html"
            (partial / page).write_text(body)
            entries.append((page, title, summary, seconds))
        items = "\n".join(
            f'<li><a href="{page}">{html.escape(title)}</a> <span class="time">(ran in {duration_text(seconds)})</span>'
            f"<p>{html.escape(summary)}</p></li>"
            for page, title, summary, seconds in entries
        )
        total = sum(seconds for *_, seconds in entries if seconds is not None)
        (partial / "index.html").write_text(f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>GANet-Seg kit: run {html.escape(run_dir.name)}, {html.escape(edition.split(":")[0])}</title>
<style>body {{ font-family: sans-serif; max-width: 52em; margin: 2em auto; padding: 0 1em; line-height: 1.45; }}
li {{ margin-bottom: 1em; }} p {{ margin: 0.2em 0; }} li p, .time {{ color: #404040; }}</style>
</head><body><main>
<h1>GANet-Seg kit: the executed notebooks of run <code>{html.escape(run_dir.name)}</code></h1>
<p><strong>{html.escape(edition.capitalize())}.</strong></p>
<p>Profile <code>{html.escape(profile)}</code>, on {html.escape(machine)}; the notebooks ran in
{duration_text(total)} together. Every figure and number on these pages was computed by the run; the
pages are the notebooks as <code>./run_all.sh</code> executed them (written by <code>ganet book</code>).</p>
<ol>
{items}
</ol>
</main></body></html>
""")
    return out_dir / "index.html"
