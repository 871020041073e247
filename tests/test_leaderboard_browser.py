"""The generated HTML leaderboard in a real browser: headless Chromium driven by selenium.

Needs Debian's ``chromium`` and ``chromium-driver`` packages and the ``selenium`` Python package; skipped with
the reason where one of them is absent.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.report.reproduce import rebuild
from tests.test_report import ADV, suite_labels, write_synthetic_results

HEADLINE = "Robust accuracy, per-image worst case (%) ↑"
SQUARE = "Square-5000 ε=8/255 · Robust accuracy (%) ↑"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,900",
)

selenium = pytest.importorskip("selenium", reason="selenium is not installed (pip install selenium)")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="headless Chromium not found: apt-get install -y chromium chromium-driver",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    results, zoo = write_synthetic_results(root)
    out = root / "leaderboards"
    rebuild(results, out, zoo)
    return out


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def column_texts(driver, table_id: str, header: str) -> list[str]:
    from selenium.webdriver.common.by import By

    headers = [th.text.rstrip(" ▲▼") for th in driver.find_elements(By.CSS_SELECTOR, f"#{table_id} thead th")]
    index = headers.index(header) + 1
    cells = driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr td:nth-child({index})")
    return [cell.text for cell in cells]


def click_header(driver, table_id: str, header: str) -> None:
    from selenium.webdriver.common.by import By

    for th in driver.find_elements(By.CSS_SELECTOR, f"#{table_id} thead th"):
        if th.text.rstrip(" ▲▼") == header:
            th.click()
            return
    raise AssertionError(f"no header {header!r}")


def test_suite_page_rows_and_sorting(site, browser, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get((site / f"{ADV}.html").as_uri())
    assert browser.title == f"RIBench — {ADV}"
    # ranked rows: the complete entries by their per-image worst case (topgap 11%, standard fp32 0%), then the
    # incomplete ones (pgdat without Square 45%, standard bf16 with PGD-20 only 5%)
    assert column_texts(browser, "leaderboard", "Model") == [
        "topgap_cnn_k16",
        "standard_cnn",
        "pgdat_cnn",
        "standard_cnn",
    ]
    assert column_texts(browser, "leaderboard", HEADLINE) == [
        "11.00 [7.4, 16.1]",
        "0.00 [0.0, 1.9]",
        "incomplete: no Square-5000 ε=8/255 45.00 [38.3, 51.9]",
        f"incomplete: no {', '.join(suite_labels()[i] for i in (0, 2, 3))} 5.00 [2.7, 9.0]",
    ]
    assert column_texts(browser, "leaderboard", "#") == ["1", "2", "3", "4"]
    assert column_texts(browser, "leaderboard", "Precision") == ["fp32", "fp32", "fp32", "bf16"]
    flag_cell = browser.find_element(By.CSS_SELECTOR, "#leaderboard tbody tr:nth-child(1) td.flag")
    assert flag_cell.text.startswith("⚑")

    click_header(browser, "leaderboard", "Model")
    assert column_texts(browser, "leaderboard", "Model") == [
        "pgdat_cnn",
        "standard_cnn",
        "standard_cnn",
        "topgap_cnn_k16",
    ]
    click_header(browser, "leaderboard", "Model")
    assert column_texts(browser, "leaderboard", "Model")[0] == "topgap_cnn_k16"

    # numbers sort as numbers, and a missing value (–) stays last in both directions
    click_header(browser, "leaderboard", SQUARE)
    assert column_texts(browser, "leaderboard", SQUARE) == ["2.00 [0.8, 5.0]", "34.00 [27.8, 40.8]", "–", "–"]
    click_header(browser, "leaderboard", SQUARE)
    assert column_texts(browser, "leaderboard", SQUARE) == ["34.00 [27.8, 40.8]", "2.00 [0.8, 5.0]", "–", "–"]
    header = browser.find_element(By.CSS_SELECTOR, "#leaderboard thead th[aria-sort]")
    assert header.get_attribute("aria-sort") == "descending"

    link = browser.find_element(By.LINK_TEXT, "topgap_cnn_k16")
    assert link.get_attribute("href").endswith("/leaderboards/models/topgap_cnn_k16.html")
    screenshot = tmp_path / "leaderboard.png"
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000


def test_index_lists_suites_and_shows_figures(site, browser, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get((site / "index.html").as_uri())
    assert column_texts(browser, "suites", "Suite") == [ADV, "cifar10-diagnostics"]
    assert "per-image worst-case robust accuracy" in browser.find_element(By.CSS_SELECTOR, "p.rule").text
    images = browser.find_elements(By.CSS_SELECTOR, ".figures img")
    assert [img.get_attribute("alt") for img in images] == ["robust_vs_steps"]
    assert browser.execute_script("return arguments[0].naturalWidth", images[0]) > 100  # the SVG loaded
    browser.find_element(By.LINK_TEXT, ADV).click()
    assert browser.title == f"RIBench — {ADV}"
    assert browser.save_screenshot(str(tmp_path / "index.png"))


def test_model_page_from_a_leaderboard_row(site, browser, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get((site / f"{ADV}.html").as_uri())
    browser.find_element(By.CSS_SELECTOR, "#leaderboard tbody tr:nth-child(1) td a").click()
    assert browser.title == "RIBench — topgap_cnn_k16"
    card = {
        row.find_element(By.TAG_NAME, "th").text: row.find_element(By.TAG_NAME, "td").text
        for row in browser.find_elements(By.CSS_SELECTOR, "#card tr")
    }
    assert card["Training"] == "from scratch, epochs unknown"  # the fixture's card has no training fields
    assert card["Top-GAP k"] == "k = 16 of H'·W' = 16×16 = 256 CAM positions: k/(H'·W') = 0.0625"
    assert card["Architecture"].startswith("cnn, topgap head")
    # every result with its interval; the PGD-50 row (images 0-61 of 200 survive) reads 31.00 [25.0, 37.7]
    rows = browser.find_elements(By.CSS_SELECTOR, f"#results-{ADV} tbody tr")
    cells = [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows]
    pgd50 = [c for c in cells if c[0].startswith("PGD-50") and c[1].endswith("[robust_accuracy]")]
    assert [c[2:4] for c in pgd50] == [["31.00", "[25.0, 37.7]"]]
    assert "rank 1 of 4" in browser.find_element(By.CSS_SELECTOR, "p.placing").text
    flags = column_texts(browser, "flags", "Status")
    assert flags.count("⚑ raised") == 2 and "not evaluated" in flags
    assert browser.find_element(By.ID, "no-cams").text.startswith("No CAM figure:")
    card_link = browser.find_element(By.LINK_TEXT, "card.yaml (every field)").get_attribute("href")
    assert card_link.endswith("/model_zoo/topgap_cnn_k16/card.yaml")  # a YAML file: Chromium would download it
    assert Path(card_link.removeprefix("file://")).is_file()
    browser.find_element(By.LINK_TEXT, ADV).click()  # back to the suite from its results section
    assert browser.title == f"RIBench — {ADV}"
    assert browser.save_screenshot(str(tmp_path / "model.png"))
