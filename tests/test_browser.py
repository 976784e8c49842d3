"""The widgets where students use them: JupyterLab in a real browser (Debian's Chromium, driven by
Playwright through `executable_path`; Playwright's own browser download cannot work here).

A smoke-profile run folder is prepared once (GAN and both U-Nets trained), the kit's JupyterLab
starts from `.venv` on a free loopback port with a token, and each widget notebook is opened, run
in the page, and its explorer moved: the rendered figure must change and the browser console must
show no error. Screenshots go to the test's temporary folder. Without Chromium these tests are
skipped and the summary says how to enable them (root conftest.py).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ganet_lib.runner import processes

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = (
    shutil.which("chromium") or "/usr/bin/chromium"
)  # Debian's package (the root conftest.py looks in the same place)
TOKEN = "ganet-browser-test"
# Chromium on a machine without internet: no background fetches, no first-run, no GPU.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

if not Path(CHROMIUM).is_file():
    pytest.skip(
        f"Chromium not found ({CHROMIUM}); `apt-get install chromium` enables the browser tests",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (it is in requirements.txt)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """(base URL, folder) of a JupyterLab serving copies of the widget notebooks over a prepared smoke run."""
    from ganet_lib.evaluation.predict import choose_postprocessing
    from ganet_lib.method.train_gan import pretrain_gan_for_run
    from ganet_lib.method.train_seg import train_segmentation_for_run
    from ganet_lib.run import setup_run

    work = tmp_path_factory.mktemp("lab")
    runs, served, home = work / "runs", work / "notebooks", work / "jupyter"
    run = setup_run("smoke", str(runs / "smoke"), progress=False)
    pretrain_gan_for_run(run, progress=False)
    for variant in ("ganet", "unet"):
        train_segmentation_for_run(run, variant, progress=False)
        choose_postprocessing(run, variant, progress=False)
    served.mkdir()
    for name in ("02_enhancement.ipynb", "05_threshold_sweep.ipynb", "06_evaluation.ipynb"):
        shutil.copy(ROOT / "notebooks" / name, served / name)  # the page saves into these, never into the repository

    env = {key: value for key, value in os.environ.items() if key != "GANET_WIDGETS"}  # a front end: widgets on
    env.update(
        GANET_PROFILE="smoke",
        GANET_RUNS=str(runs),
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
    )
    for plugin, settings in (
        ("apputils-extension/notification", '{"fetchNews": "false"}'),  # no news pop-up over the page
        ("notebook-extension/tracker", '{"windowingMode": "none"}'),
    ):  # every cell in the page, not only those in view
        path = home / "settings" / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(settings)
    port = free_port()
    log = open(work / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "jupyter"),
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={served}",
            "--LabApp.expose_app_in_browser=True",
            "--ServerApp.port_retries=0",
            "--LabApp.extension_manager=readonly",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        cwd=served,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, (work / "jupyterlab.log").read_text()
                time.sleep(0.3)
        yield base, work
    finally:  # the server and the kernels it started
        processes.stop_tree(server.pid)
        log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


# The notebook panel of this page's notebook (JupyterLab exposes its app with expose_app_in_browser).
PANEL = (
    "(window.jupyterapp && Array.from(window.jupyterapp.shell.widgets('main'))"
    ".find(w => w.context && w.context.path === NOTEBOOK))"
)


def panel_js(notebook: str, body: str) -> str:
    """A JavaScript function whose `panel` is the notebook's panel (undefined while it loads)."""
    return f"() => {{ const panel = {PANEL.replace('NOTEBOOK', repr(notebook))}; {body} }}"


def open_and_run(browser, base: str, notebook: str, errors: list[str]):
    """Open `notebook` in a JupyterLab workspace of its own, run every cell as a student would
    (Run > Run All Cells), wait until all have run, and return the page and the explorer."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.on("console", lambda message: errors.append(f"console: {message.text}") if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
    page.goto(f"{base}/lab/workspaces/{Path(notebook).stem}/tree/{notebook}?reset&token={TOKEN}")
    page.wait_for_function(
        panel_js(
            notebook,
            "const kernel = panel && panel.sessionContext.session && panel.sessionContext.session.kernel;"
            " return kernel && kernel.status === 'idle';",
        ),
        timeout=60_000,
    )
    page.evaluate(
        panel_js(
            notebook,
            "window.jupyterapp.shell.activateById(panel.id);"
            " return window.jupyterapp.commands.execute('notebook:run-all-cells');",
        )
    )
    wait_until_executed(page, notebook, timeout_ms=120_000)
    explorer = page.locator(".widget-interact")
    explorer.locator(".widget-output img").first.wait_for(state="attached")
    explorer.scroll_into_view_if_needed()
    return page, explorer


def wait_until_executed(page, notebook: str, timeout_ms: int = 30_000) -> None:
    """Until every code cell has run and the kernel is idle; a cell that raised fails at once, with its error."""
    page.wait_for_function(
        panel_js(
            notebook,
            "const cells = panel.content.widgets.filter(c => c.model.type === 'code');"
            " const failed = cells.find(c => c.model.outputs.toJSON().some(o => o.output_type === 'error'));"
            " if (failed) return 'error';"
            " return panel.sessionContext.session.kernel.status === 'idle'"
            "  && cells.every(c => c.model.executionCount !== null && c.model.executionState !== 'running');",
        ),
        timeout=timeout_ms,
    )
    failures = page.evaluate(
        panel_js(
            notebook,
            "return panel.content.widgets.flatMap(c => c.model.type === 'code' ?"
            " c.model.outputs.toJSON().filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue) : "
            "[]);",
        )
    )
    assert not failures, f"{notebook} raised in the browser: {failures}"


def figure(explorer) -> str:
    return explorer.locator(".widget-output img").first.get_attribute("src")


def wait_for_new_figure(page, explorer, before: str) -> str:
    page.wait_for_function(
        "([selector, before]) => { const img = document.querySelector(selector);"
        " return img && img.getAttribute('src') !== before; }",
        arg=[".widget-interact .widget-output img", before],
        timeout=30_000,
    )
    return figure(explorer)


def choose(explorer, text: str) -> None:
    """Click a ToggleButtons option and wait until the widget shows it selected. One CI run lost the
    click on 'unet' right after the 'TC' redraw (the figure never changed; the same test passed on a
    rerun): a click that did not select is repeated once, and the figure check that follows is unchanged."""
    exact = re.compile(f"^\\s*{re.escape(text)}\\s*$")  # 'unet', not 'unet-raw'
    button = explorer.locator("button").filter(has_text=exact)
    for _ in range(2):
        button.click()
        try:
            explorer.locator("button.mod-active").filter(has_text=exact).wait_for(state="attached", timeout=5_000)
            return
        except Exception:  # playwright's TimeoutError: the click did not select the option
            continue
    raise AssertionError(f"the explorer's '{text}' button could not be selected")


def move_slider(page, slider, presses: int) -> None:
    """Keyboard on the slider's handle, as a student would nudge it (continuous_update=False: one update).
    One CI run (under load) lost the key presses right after a redraw: the readout never moved and the
    figure never changed (the same test passed on a rerun). Presses that did not move the readout are
    repeated once; the figure check that follows is unchanged."""
    handle, readout = slider.locator(".noUi-handle"), slider.locator(".widget-readout")
    before = readout.inner_text()
    for _attempt in range(2):
        handle.focus()
        for _ in range(presses):
            page.keyboard.press("ArrowRight")
        try:
            page.wait_for_function(
                "([element, before]) => element.innerText !== before",
                arg=[readout.element_handle(), before],
                timeout=5_000,
            )
            return
        except Exception:  # playwright's TimeoutError: the presses were lost; try once more
            continue


def test_enhancement_explorer_in_jupyterlab(lab, browser):
    base, work = lab
    errors: list[str] = []
    page, explorer = open_and_run(browser, base, "02_enhancement.ipynb", errors)
    first = figure(explorer)
    explorer.locator("select").select_option("flair")  # the modality dropdown
    flair = wait_for_new_figure(page, explorer, first)
    move_slider(page, explorer.locator(".widget-slider").first, 3)  # lambda
    wait_for_new_figure(page, explorer, flair)
    page.screenshot(path=str(work / "02_after.png"))
    page.close()
    assert errors == []


def test_threshold_and_slice_explorer_in_jupyterlab(lab, browser):
    base, work = lab
    errors: list[str] = []
    page, explorer = open_and_run(browser, base, "05_threshold_sweep.ipynb", errors)
    first = figure(explorer)
    page.screenshot(path=str(work / "05_before.png"), full_page=False)
    sliders = explorer.locator(".widget-slider")
    assert sliders.count() == 2  # threshold, slice
    move_slider(page, sliders.nth(1), 2)  # the slice
    moved = wait_for_new_figure(page, explorer, first)
    move_slider(page, sliders.nth(0), 4)  # the threshold
    wait_for_new_figure(page, explorer, moved)
    explorer.scroll_into_view_if_needed()
    page.screenshot(path=str(work / "05_after.png"))
    page.close()
    assert errors == []


def test_subject_slice_region_explorer_in_jupyterlab(lab, browser):
    base, work = lab
    errors: list[str] = []
    page, explorer = open_and_run(browser, base, "06_evaluation.ipynb", errors)
    first = figure(explorer)
    page.screenshot(path=str(work / "06_before.png"))
    choose(explorer, "TC")  # region
    region = wait_for_new_figure(page, explorer, first)
    choose(explorer, "unet")  # variant
    variant = wait_for_new_figure(page, explorer, region)
    move_slider(page, explorer.locator(".widget-slider").first, 1)  # the slice
    wait_for_new_figure(page, explorer, variant)
    explorer.scroll_into_view_if_needed()
    page.screenshot(path=str(work / "06_after.png"))
    page.close()
    assert errors == []


def keep_screenshot(path: Path) -> None:
    """Copy a screenshot to $GANET_SCREENSHOTS when set (evidence for a closing note); tests pass either way."""
    if os.environ.get("GANET_SCREENSHOTS"):
        target = Path(os.environ["GANET_SCREENSHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / path.name)


def test_a_student_notebook_shows_a_passed_and_a_failed_check(lab, browser):
    """The student edition of notebook 02 in JupyterLab, with 02.1 solved and 02.2 written wrongly."""
    import json

    from ganet_lib.teaching.student import student_notebook

    base, work = lab
    solution = json.loads((ROOT / "notebooks" / "02_enhancement.ipynb").read_text())
    edition, keys = student_notebook(solution, "02_enhancement.ipynb")
    assert keys == ["02.1", "02.2"]
    solved = next("".join(c["source"]) for c in solution["cells"] if "".join(c["source"]).startswith("# Exercise 02.1"))
    for cell in edition["cells"]:
        source = "".join(cell["source"])
        if source.startswith("# Exercise 02.1"):
            cell["source"] = solved
        elif source.startswith("# Exercise 02.2"):  # divides by the maximum, forgets the minimum
            cell["source"] = source.replace(
                source[source.index("    raise NotImplementedError") :],
                "    return np.asarray(images, float) / np.max(images)\n",
            )
    name = "student_02_enhancement.ipynb"
    (work / "notebooks" / name).write_text(json.dumps(edition))
    errors: list[str] = []
    page, _ = open_and_run(browser, base, name, errors)
    passed = page.locator(".jp-OutputArea-output", has_text="PASSED  Exercise 02.1")
    failed = page.locator(".jp-OutputArea-output", has_text="FAILED  Exercise 02.2")
    passed.first.wait_for(state="attached", timeout=30_000)
    failed.first.wait_for(state="attached", timeout=30_000)
    assert "expected" in failed.first.inner_text() and "received" in failed.first.inner_text()
    passed.first.scroll_into_view_if_needed()
    page.screenshot(path=str(work / "student_check_passed.png"))
    failed.first.scroll_into_view_if_needed()
    page.screenshot(path=str(work / "student_check_failed.png"))
    keep_screenshot(work / "student_check_passed.png")
    keep_screenshot(work / "student_check_failed.png")
    # my_code: the cells after the exercises run the student's 02.1 and the kit's 02.2, and say so.
    chosen = page.locator(".jp-OutputArea-output", has_text="using your enhance_slice (exercise 02.1 passed)")
    chosen.first.wait_for(state="attached", timeout=30_000)
    assert "using the kit's minmax_slices: exercise 02.2 failed its check" in chosen.first.inner_text()
    chosen.first.scroll_into_view_if_needed()
    page.screenshot(path=str(work / "student_my_code.png"))
    keep_screenshot(work / "student_my_code.png")
    page.close()
    assert errors == []


def test_the_book_of_a_run_opens_with_its_figures(lab, browser):
    import papermill

    from ganet_lib.runner.pipeline import KERNEL
    from ganet_lib.teaching.book import write_book

    base, work = lab
    run_dir = work / "runs" / "smoke"
    (run_dir / "notebooks").mkdir(exist_ok=True)
    for name in ("02_enhancement.ipynb", "06_evaluation.ipynb"):
        papermill.execute_notebook(
            ROOT / "notebooks" / name,
            run_dir / "notebooks" / name,
            kernel_name=KERNEL,
            progress_bar=False,
            parameters={"profile": "smoke", "run_dir": str(run_dir)},
            cwd=str(ROOT / "notebooks"),
        )
    index = write_book(run_dir, work / "book")
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(index.as_uri())
    links = page.locator("a")
    assert links.count() == 2
    page.screenshot(path=str(work / "book_index.png"))
    keep_screenshot(work / "book_index.png")
    links.nth(1).click()
    page.wait_for_load_state("load")
    assert "06_evaluation.html" in page.url
    images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
    assert len(images) >= 5 and all(complete and width > 0 for complete, width in images), images  # every figure loaded
    page.close()


def test_the_student_book_reads_offline_and_passes_axe(browser, tmp_path):
    """The student edition of notebook 02's book page with every request but file:// refused: the
    equations are MathML, the figures load and say what they show, no solution is in it, and
    axe-core (inside the axe-playwright-python wheel: nothing downloaded) finds nothing serious."""
    import papermill
    from axe_playwright_python.sync_playwright import Axe

    from ganet_lib.run import setup_run
    from ganet_lib.runner.pipeline import KERNEL
    from ganet_lib.teaching.book import write_book

    run = setup_run("smoke", str(tmp_path / "runs" / "smoke"), progress=False)
    (run.run_dir / "notebooks").mkdir()
    papermill.execute_notebook(
        ROOT / "notebooks" / "02_enhancement.ipynb",
        run.run_dir / "notebooks" / "02_enhancement.ipynb",
        kernel_name=KERNEL,
        progress_bar=False,
        parameters={"profile": "smoke", "run_dir": str(run.run_dir)},
        cwd=str(ROOT / "notebooks"),
    )
    index = write_book(run.run_dir, tmp_path / "book", student=True)

    context = browser.new_context(viewport={"width": 1200, "height": 900})
    refused: list[str] = []

    def files_only(route):
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    context.route("**/*", files_only)
    page = context.new_page()
    page.goto(index.as_uri())
    serious = {}
    serious["index"] = [
        v["id"] for v in Axe().run(page).response["violations"] if v["impact"] in ("serious", "critical")
    ]
    page.locator("a", has_text="02").click()
    page.wait_for_load_state("load")
    assert "Student edition" in page.locator("header").inner_text()
    assert 'raise NotImplementedError("Exercise 02.1' in page.inner_text("main")
    equations = page.evaluate(
        "Array.from(document.querySelectorAll('math')).map(m => [m.getAttribute('display'), "
        "m.getBoundingClientRect().height])"
    )
    assert ["block", True] in [[display, height > 20] for display, height in equations], equations  # laid out
    assert "$$" not in page.inner_text("main") and "\\frac" not in page.inner_text("main")  # no raw TeX shown
    images = page.evaluate("Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])")
    assert len(images) >= 3 and all(done and width > 0 for done, width, _ in images), images
    assert all(alt and "No description" not in alt for *_, alt in images), images
    page.locator("math[display=block]").first.scroll_into_view_if_needed()
    page.screenshot(path=str(tmp_path / "book_offline.png"))
    keep_screenshot(tmp_path / "book_offline.png")
    serious["02"] = [v["id"] for v in Axe().run(page).response["violations"] if v["impact"] in ("serious", "critical")]
    context.close()
    assert refused == []  # nothing outside the folder was asked for
    assert serious == {"index": [], "02": []}
