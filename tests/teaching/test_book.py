"""The book of a run, from a made-up run folder: two hand-made executed notebooks with an equation,
an exercise and its solution, hidden tests, figures (one saved with a title, one with an alt of
its own, one drawn without a file), a tqdm widget and papermill's durations. No browser: the
browser test (tests/test_browser.py) opens a real run's book offline and runs axe on it."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from ganet_lib.errors import KitInputError
from ganet_lib.runner.cli import main
from ganet_lib.teaching import book

ROOT = Path(__file__).resolve().parents[2]
SOLUTION_LINE = "return np.clip(images * 2.0, 0.0, 1.0)  # the secret"
HIDDEN_LINE = "assert enhance_twice(np.ones(3)).sum() == 3.0  # graded, never shown"
NBCONVERT_DEFAULT_ALT = "No description has been provided for this image"
PROGRESS_MODEL = {
    "bar": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_label", "IPY_MODEL_done", "IPY_MODEL_rate"]}},
    "label": {"model_name": "HTMLModel", "state": {"value": "pre-process\u2007subjects:\u2007100%"}},
    "done": {"model_name": "FloatProgressModel", "state": {"value": 4.0, "max": 4.0}},
    "rate": {"model_name": "HTMLModel", "state": {"value": "\u20074/4\u2007[00:01&lt;00:00,\u20073.1subject/s]"}},
}


def png(title: str = "") -> bytes:
    """A 3 x 2 PNG, with `title` in its metadata as `viz.save_figure` writes it."""
    info = PngInfo()
    info.add_text("Title", title)
    out = io.BytesIO()
    Image.new("RGB", (3, 2), "white").save(out, format="PNG", pnginfo=info)
    return out.getvalue()


def image_output(metadata: dict | None = None) -> dict:
    return {
        "output_type": "display_data",
        "data": {"image/png": base64.b64encode(png()).decode(), "text/plain": ["<Figure size 640x480 with 1 Axes>"]},
        "metadata": metadata or {},
    }


def code(source: str, outputs: list[dict] = (), tags: list[str] = ()) -> dict:
    return {
        "cell_type": "code",
        "execution_count": 1,
        "metadata": {"tags": list(tags), "papermill": {"duration": 0.1}},
        "outputs": list(outputs),
        "source": source,
    }


def markdown(source: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": source}


def executed_notebook(cells: list[dict], seconds: float, widgets: dict | None = None) -> dict:
    metadata = {
        "kernelspec": {"name": "ganet-kit", "display_name": "Python (ganet-kit)", "language": "python"},
        "language_info": {"name": "python"},
        "papermill": {"duration": seconds, "parameters": {"profile": "smoke"}},
    }
    if widgets:
        metadata["widgets"] = {book.WIDGET_STATE: {"state": widgets, "version_major": 2, "version_minor": 0}}
    cells = [{**cell, "id": f"cell-{k}"} for k, cell in enumerate(cells)]
    return {"nbformat": 4, "nbformat_minor": 5, "metadata": metadata, "cells": cells}


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """A run folder as `./run_all.sh` leaves it, as far as the book reads it."""
    run = tmp_path / "run"
    (run / "notebooks").mkdir(parents=True)
    (run / "figures").mkdir()
    (run / "figures" / "01_curve.png").write_bytes(png("The enhancement curve for three lambdas"))
    (run / "config.json").write_text(json.dumps({"profile": "smoke"}))
    (run / "report.md").write_text("# Report\n\n## Machine\n\nLinux-test; 2 CPU cores; no GPU\n\n## Resolved\n")
    first = executed_notebook(
        [
            markdown("# 01 · Enhancement\n\nThe curve $I \\in [0, 1]$ of a slice.\n\n$$\nL = -\\log D\n$$"),
            markdown("## The curve"),
            code(
                'fig = viz.plot_transfer_curves(curves)\nviz.save_figure(fig, run.figure_path("01_curve.png"));',
                outputs=[image_output()],
            ),
            code(
                "# Exercise 01.1: double\ndef enhance_twice(images):\n    ### BEGIN SOLUTION\n    "
                f"{SOLUTION_LINE}\n    ### END SOLUTION",
                tags=["exercise"],
            ),
            code(
                f"exercises.check('01.1', enhance_twice)\n### BEGIN HIDDEN TESTS\n{HIDDEN_LINE}\n### END HIDDEN TESTS",
                outputs=[{"output_type": "stream", "name": "stdout", "text": "PASSED  Exercise 01.1\n"}],
            ),
            code(
                "cache = build_slice_cache(run.cases)",
                outputs=[
                    {
                        "output_type": "display_data",
                        "data": {
                            book.WIDGET_VIEW: {"model_id": "bar", "version_major": 2, "version_minor": 0},
                            "text/plain": "pre-process subjects:   0%|          | 0/4",
                        },
                        "metadata": {},
                    }
                ],
            ),
        ],
        seconds=12.34,
        widgets=PROGRESS_MODEL,
    )
    second = executed_notebook(
        [
            markdown("# 02 · Evaluation\n\nDice per subject."),
            markdown("## Per subject"),
            code("plt.imshow(dice_map)", outputs=[image_output()]),
            code("show(fig)", outputs=[image_output({"alt": "Dice of every subject, both variants"})]),
        ],
        seconds=125.0,
    )
    (run / "notebooks" / "01_enhancement.ipynb").write_text(json.dumps(first))
    (run / "notebooks" / "02_evaluation.ipynb").write_text(json.dumps(second))
    return run


def soup(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(), "html.parser")


def test_the_student_book_shows_stubs_and_no_solution_or_hidden_test(run_dir, tmp_path):
    index = book.write_book(run_dir, tmp_path / "book", student=True)
    page = (index.parent / "01_enhancement.html").read_text()
    text = soup(index.parent / "01_enhancement.html").get_text()
    assert SOLUTION_LINE.split("  #")[0] not in text and "the secret" not in page
    assert HIDDEN_LINE.split("  #")[0] not in text and "HIDDEN TESTS" not in text
    assert 'raise NotImplementedError("Exercise 01.1' in text  # the stub a student fills in
    assert "PASSED  Exercise 01.1" in text  # outputs stay as executed
    for path in (index, index.parent / "01_enhancement.html", index.parent / "02_evaluation.html"):
        assert "Student edition" in soup(path).get_text(), path.name


def test_the_teachers_book_keeps_the_solutions(run_dir, tmp_path):
    index = book.write_book(run_dir, tmp_path / "book")
    text = soup(index.parent / "01_enhancement.html").get_text()
    assert SOLUTION_LINE.split("  #")[0] in text
    assert "Teacher's edition" in soup(index).get_text() and "Teacher's edition" in text


def test_every_figure_has_a_meaningful_alt_text(run_dir, tmp_path):
    index = book.write_book(run_dir, tmp_path / "book", student=True)
    first = [img["alt"] for img in soup(index.parent / "01_enhancement.html").find_all("img")]
    second = [img["alt"] for img in soup(index.parent / "02_evaluation.html").find_all("img")]
    assert first == ["The enhancement curve for three lambdas (section “The curve”); saved as 01_curve.png"]
    assert second == [
        "Figure (section “Per subject”), drawn by `plt.imshow(dice_map)`",  # no file, no title: the line that drew it
        "Dice of every subject, both variants",  # the output's own alt text
    ]
    assert NBCONVERT_DEFAULT_ALT not in (index.parent / "02_evaluation.html").read_text()


def test_the_pages_fetch_nothing_and_show_equations_as_mathml(run_dir, tmp_path):
    index = book.write_book(run_dir, tmp_path / "book", student=True)
    for path in sorted(index.parent.glob("*.html")):
        page = soup(path)
        remote = [
            f"<{tag.name} {attribute}={tag[attribute]}>"
            for tag in page.find_all(["script", "link", "img", "iframe", "source", "audio", "video", "embed"])
            for attribute in ("src", "href")
            if tag.has_attr(attribute) and tag[attribute].strip().lower().startswith(("http:", "https:", "//"))
        ]
        assert remote == [], path.name
        assert page.html["lang"] == "en", path.name
    page = soup(index.parent / "01_enhancement.html")
    equations = page.find_all("math")
    assert [math.get("display") for math in equations] == ["inline", "block"]
    assert equations[1]["alttext"] == "L = -\\log D" and "$" not in page.find(class_="jp-MarkdownCell").get_text()
    assert "MathJax" not in str(page)


def test_a_progress_bar_shows_its_last_line_as_text(run_dir, tmp_path):
    index = book.write_book(run_dir, tmp_path / "book", student=True)
    page = (index.parent / "01_enhancement.html").read_text()
    assert "pre-process subjects: 100% |██████████| 4/4 [00:01&lt;00:00, 3.1subject/s]" in page
    assert book.WIDGET_VIEW not in page and "0/4" not in page  # not tqdm's first line


def test_each_page_and_the_index_say_how_long_on_which_profile_and_machine(run_dir, tmp_path):
    index = book.write_book(run_dir, tmp_path / "book", student=True)
    page = " ".join(soup(index.parent / "01_enhancement.html").get_text().split())
    assert "This notebook ran in 12.3 s (profile smoke, on Linux-test; 2 CPU cores; no GPU)" in page
    listing = " ".join(soup(index).get_text().split())
    assert "01 · Enhancement (ran in 12.3 s)" in listing and "02 · Evaluation (ran in 2 min 05 s)" in listing
    assert "Profile smoke, on Linux-test; 2 CPU cores; no GPU; the notebooks ran in 2 min 17 s together" in listing


def test_the_machine_comes_from_the_run_never_from_this_computer(run_dir):
    assert book.run_machine(run_dir) == "Linux-test; 2 CPU cores; no GPU"  # report.md's section
    (run_dir / "run_summary.json").write_text(json.dumps({"machine": "H200 box"}))
    assert book.run_machine(run_dir) == "H200 box"  # what the pipeline records now
    (run_dir / "run_summary.json").unlink()
    (run_dir / "report.md").unlink()
    assert book.run_machine(run_dir) == "a machine the run did not record"  # pages: "on a machine the run ..."


def test_every_equation_of_the_kits_notebooks_becomes_mathml():
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            source = "".join(cell["source"])
            if cell["cell_type"] == "markdown" and "$" in source:
                rendered = book.markdown_html(source)
                assert "<math" in rendered and 'class="tex"' not in rendered, f"{path.name}: {source[:80]}"
                assert "<mi>&</mi>" not in rendered, f"{path.name}: an alignment sign shown as text"


def test_an_aligned_block_becomes_a_table_of_rows():
    mathml = book.tex_to_mathml("\\begin{aligned} a &= 1 \\\\ b &= 2 \\end{aligned}", display="block")
    assert mathml.count("<mtr>") == 2 and "<mi>&</mi>" not in mathml  # latex2mathml's own reading shows the &


def test_tex_latex2mathml_cannot_read_stays_tex_in_code():
    assert book.tex_to_mathml("\\frac{1}{") == '<code class="tex">\\frac{1}{</code>'
    assert book.tex_to_mathml("x^2", display="block").startswith('<math alttext="x^2" ')


def test_a_run_without_notebooks_or_a_folder_with_other_files_is_refused(run_dir, tmp_path, capsys):
    with pytest.raises(KitInputError, match="holds no executed notebooks"):
        book.write_book(tmp_path / "empty", tmp_path / "book")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("mine")
    assert main(["book", "--run", str(run_dir), "--out", str(tmp_path / "mine"), "--student"]) == 2
    assert "holds files other than an earlier book" in capsys.readouterr().err
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "mine"
