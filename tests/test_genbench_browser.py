"""genbench vote in a real headless browser: Debian's chromium driven by chromedriver through selenium.

The test starts the real `genbench vote` process, opens the page, types a rater id, votes on every pair
with the keyboard (← and →) and checks each vote in the SQLite database against the side it pressed.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile

import pytest

pytest.importorskip("flask")
selenium = pytest.importorskip("selenium", reason="selenium is not installed (pip install selenium)")

from genbench_helpers import VoteServer, make_photo_run  # noqa: E402

from genbench.vote.server import left_side  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,900",
)


@pytest.fixture()
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip(
            "chromium and chromium-driver are not installed (apt-get install -y chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="genbench-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_vote_with_the_keyboard_in_chromium(tmp_path, photos, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    run = make_photo_run(tmp_path / "run", photos)
    server = VoteServer(run, tmp_path / "server.log")
    try:
        browser.get(server.url + "/")
        wait = WebDriverWait(browser, 30)
        wait.until(lambda d: d.find_element(By.ID, "instructions").text)
        assert "choose a better one with good image quality" in browser.find_element(By.TAG_NAME, "body").text
        field = browser.find_element(By.ID, "rater")
        field.send_keys("browser-rater")
        field.send_keys(Keys.ENTER)

        pressed = {}
        body = browser.find_element(By.TAG_NAME, "body")
        for k in range(5):
            wait.until(lambda d, k=k: d.find_element(By.ID, "progress").text.startswith(f"{k} / 5"))
            wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "voting")
            pid = browser.find_element(By.ID, "pair").get_attribute("data-pair-id")
            assert pid not in pressed
            widths = browser.execute_script(
                "return ['left', 'right'].map((id) => document.getElementById(id).naturalWidth)"
            )
            assert min(widths) > 0, "the images did not load"
            key = Keys.ARROW_LEFT if k % 2 == 0 else Keys.ARROW_RIGHT
            pressed[pid] = "left" if key == Keys.ARROW_LEFT else "right"
            body.send_keys(key)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "finished")
        assert "All pairs are done" in browser.find_element(By.ID, "finished").text
        assert "masterpiece" not in browser.page_source and "prompt" not in browser.page_source.lower()

        with sqlite3.connect(run / "votes.sqlite") as con:
            rows = con.execute(
                "SELECT pair_id, choice, left_side FROM votes WHERE rater='browser-rater'"
            ).fetchall()
        assert len(rows) == 5 and {r[0] for r in rows} == set(pressed)
        for pid, choice, left in rows:
            assert left == left_side("browser-rater", pid)
            assert choice == (left if pressed[pid] == "left" else ("b" if left == "a" else "a"))

        # a reload remembers the rater and shows the finished state, without a second vote
        browser.refresh()
        wait.until(lambda d: d.find_element(By.ID, "rater").get_attribute("value") == "browser-rater")
        browser.find_element(By.ID, "rater").send_keys(Keys.ENTER)
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "finished")
        with sqlite3.connect(run / "votes.sqlite") as con:
            assert con.execute("SELECT COUNT(*) FROM votes").fetchone()[0] == 5
    finally:
        server.stop()
