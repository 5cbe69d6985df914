"""The MLflow UI of a finished pipeline, looked at the way a person would: in headless Chromium.

The browser is Debian's `chromium` (.ci/run installs it), driven by playwright; nothing is downloaded.
The server is the session's `pipeline_server` (tests/conftest.py): a real `mlflow server` whose store
holds the quick pipeline `mlflow run .` left after a kill during training, a resumed run and a re-run. Each check saves the screenshot it looked at under docs/, where the
README and docs/scale-out.md show them.
"""

import os
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

SCREENSHOTS = PROJECT_ROOT / "docs"
CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling out, and this machine refuses it.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
UI_TIMEOUT_MS = 60_000  # the UI's first render on 2 busy cores can take a while
STEPS = ("prepare", "train", "evaluate", "judge", "register")

pytestmark = pytest.mark.slow


def missing(message: str):
    """Without a browser CI must fail, not go quietly green; a developer's machine may skip."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not CHROMIUM.exists():
        missing(f"{CHROMIUM} not found: `apt-get install -y chromium` (.ci/run does this in CI)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright package is missing: `pip install -e '.[dev]'`")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),  # a fresh --user-data-dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1440, "height": 900},
        )
        context.set_default_timeout(UI_TIMEOUT_MS)
        from playwright.sync_api import expect

        expect.set_options(timeout=UI_TIMEOUT_MS)
        yield context
        context.close()


@pytest.fixture
def page(browser):
    page = browser.new_page()
    yield page
    page.close()


def open_ui(page, url: str):
    """Go to a page of the UI and put away the assistant panel that opens on a fresh profile."""
    page.goto(url)
    close = page.get_by_role("button", name="Close")
    try:
        close.first.wait_for(timeout=5_000)
        close.first.click()
    except Exception:  # no panel this time: nothing to close
        pass


def run_link(page, run_id: str):
    return page.locator(f'a[href$="/runs/{run_id}"]')


def test_runs_list_shows_the_step_runs(pipeline_server, page):
    from mlflow import MlflowClient
    from playwright.sync_api import expect

    server, runs = pipeline_server.server, pipeline_server.run_ids
    open_ui(page, f"{server.url}/#/experiments/{pipeline_server.experiment_id}/runs")
    # the step runs are nested under their main run: unfold it as a person would, and the killed one whose
    # prepare the finished pipeline reused
    killed_main = MlflowClient(server.url).get_run(runs["prepare"]).data.tags["mlflow.parentRunId"]
    for main_id in (runs["main"], killed_main):
        expect(run_link(page, main_id)).to_have_text("main")
        main_cell = page.locator("[role=gridcell][col-id='attributes.`Run Name`']", has=run_link(page, main_id))
        main_cell.get_by_role("button").first.click()
    for step in STEPS:
        expect(run_link(page, runs[step])).to_have_text(step)  # each row links to that step's own run
    page.screenshot(path=SCREENSHOTS / "ui-runs.png")


def test_train_run_shows_its_loss(pipeline_server, page):
    from mlflow import MlflowClient
    from playwright.sync_api import expect

    server, train_id = pipeline_server.server, pipeline_server.run_ids["train"]
    history = MlflowClient(server.url).get_metric_history(train_id, "loss")
    assert len(history) >= 2, "train logged fewer than two loss points: no curve to show"
    last = max(history, key=lambda m: (m.step, m.timestamp)).value

    open_ui(page, f"{server.url}/#/experiments/{pipeline_server.experiment_id}/runs/{train_id}")
    expect(page.get_by_role("heading", name="train")).to_be_visible()
    loss_row = page.get_by_role("row").filter(has=page.get_by_role("cell", name="loss", exact=True))
    # the metrics table shows the last logged value, written the way JavaScript (and repr) write a float
    expect(loss_row.get_by_role("cell").nth(1)).to_have_text(repr(last))
    # the loss curve: a train run logs ~20 metrics, so filter the charts the way a person would
    page.get_by_role("tab", name="Model metrics").click()
    page.get_by_placeholder("Search metric charts").fill("loss")
    expect(page.get_by_text("loss", exact=True)).to_be_visible()  # the chart titled exactly `loss`
    page.wait_for_timeout(1_500)  # let the charts finish drawing before the picture
    page.screenshot(path=SCREENSHOTS / "ui-train-run.png")


def test_model_page_shows_the_aliases(pipeline_server, page):
    from mlflow import MlflowClient
    from playwright.sync_api import expect

    server, name = pipeline_server.server, pipeline_server.model_name
    client = MlflowClient(server.url)
    aliases = client.get_registered_model(name).aliases
    gate_passed = client.get_run(pipeline_server.run_ids["register"]).data.metrics["gate_passed"] == 1.0
    assert ("production" in aliases) == gate_passed, f"production alias {aliases} disagrees with the gate ({gate_passed=})"

    open_ui(page, f"{server.url}/#/models/{name}")

    def alias_chip(alias: str, version: str):
        """The `@ alias` chip in the Aliases column of that version's row (tag values may mention aliases too)."""
        row = page.get_by_role("row").filter(has=page.get_by_role("link", name=f"Version {version}", exact=True))
        return row.locator(f'[role=status][title="{alias}"]')

    expect(alias_chip("staging", aliases["staging"])).to_have_text("@ staging")
    if gate_passed:
        expect(alias_chip("production", aliases["production"])).to_have_text("@ production")
    else:
        expect(page.locator('[role=status][title="production"]')).to_have_count(0)
    page.screenshot(path=SCREENSHOTS / "ui-model.png")


def test_model_version_page_says_what_the_version_is(pipeline_server, page):
    """The version's description (register writes it) is on its page: gate decision first, then figures;
    and the logged model's page lists the evaluate and judge figures linked to it."""
    from mlflow import MlflowClient
    from playwright.sync_api import expect

    server, name = pipeline_server.server, pipeline_server.model_name
    client = MlflowClient(server.url)
    version = client.get_model_version_by_alias(name, "staging")
    headline = version.description.split("\n")[0].strip("*").split("**")[0]  # "Gate failed: staging only."
    open_ui(page, f"{server.url}/#/models/{name}/versions/{version.version}")
    expect(page.get_by_text(headline).first).to_be_visible()
    expect(page.get_by_text("judge mean (1-5)").first).to_be_visible()
    page.wait_for_timeout(1_000)
    page.screenshot(path=SCREENSHOTS / "ui-model-version.png")

    [logged] = [m for m in client.search_logged_models([pipeline_server.experiment_id]) if m.source_run_id == pipeline_server.run_ids["train"]]
    assert {"judge_mean", "model/distinct_2"} <= {metric.key for metric in logged.metrics}
    open_ui(page, f"{server.url}/#/experiments/{pipeline_server.experiment_id}/models/{logged.model_id}")
    expect(page.get_by_text("judge_mean", exact=True).first).to_be_visible()
    page.wait_for_timeout(1_000)
    page.screenshot(path=SCREENSHOTS / "ui-logged-model.png")


def test_judge_run_shows_its_per_saying_table(pipeline_server, page, tmp_path):
    """judge logs every saying it scored with `log_table`: the run's artifact view shows it as a table,
    columns named, the first saying in the first row, as a person would read it."""
    import json

    from mlflow import MlflowClient
    from playwright.sync_api import expect

    server, judge_id = pipeline_server.server, pipeline_server.run_ids["judge"]
    logged = json.loads(Path(MlflowClient(server.url).download_artifacts(judge_id, "judge_table.json", str(tmp_path))).read_text())
    columns = logged["columns"]
    assert {"prompt", "saying", "score"} <= set(columns), columns
    first_row = dict(zip(columns, logged["data"][0]))

    open_ui(page, f"{server.url}/#/experiments/{pipeline_server.experiment_id}/runs/{judge_id}/artifacts/judge_table.json")
    expect(page.get_by_role("checkbox", name="View as table")).to_be_checked()  # MLflow knows it for a logged table
    table = page.get_by_role("table")
    for column in ("prompt", "saying", "score"):
        # a header cell holds the column's name (a sort button) and a resize handle
        expect(table.get_by_role("columnheader").filter(has=page.get_by_role("button", name=column, exact=True))).to_be_visible()
    cells = table.get_by_role("row").nth(1).get_by_role("cell")  # row 0 is the header
    expect(cells.nth(columns.index("saying"))).to_have_text(first_row["saying"].strip())
    expect(cells.nth(columns.index("prompt"))).to_have_text(first_row["prompt"].strip())
    page.wait_for_timeout(1_000)
    page.screenshot(path=SCREENSHOTS / "ui-judge-table.png")
