"""genbench vote's login step with the server away: a real Chromium, a real `genbench vote` process stopped
(SIGKILL) and started again on its port."""

from __future__ import annotations

import pytest

pytest.importorskip("flask")
pytest.importorskip("selenium", reason="selenium is not installed (pip install selenium)")

import genbench_helpers as page  # noqa: E402
from genbench_helpers import VoteServer, chromium, make_photo_run  # noqa: E402


def _login_error(browser) -> str:
    return str(browser.execute_script("return document.getElementById('login-error').textContent"))


@pytest.mark.slow  # a server started twice and a retry's wait: ~35 s on the loaded 2-core machine
def test_the_login_step_tries_again_by_itself_while_the_server_is_away(tmp_path, photos):
    """**Was**: a new rater's id entered while the server was away got "The study server cannot be reached.
    Press Enter again in a moment." and the page stayed on it, the server back or not, until the rater
    pressed Enter again. Now it says it tries again by itself (1, 2, 4, then every 8 s, as a vote does), and
    once the server is back the rater is at their first pair without a key pressed; an Enter pressed while it
    waits tries at once, with the id then typed."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    run = make_photo_run(tmp_path / "run", photos)
    server = VoteServer(run, tmp_path / "server.log")
    with chromium() as browser:
        try:
            browser.get(server.url + "/")
            page.until(browser, lambda d: d.find_element(By.ID, "instructions").text)
            server.proc.kill()
            server.proc.wait()
            server.stop()
            field = browser.find_element(By.ID, "rater")
            field.send_keys("typo", Keys.ENTER)
            page.until(browser, lambda d: "Trying again in" in _login_error(d))
            assert "cannot be reached" in _login_error(browser) and page.state(browser) == "login"
            field.clear()
            field.send_keys("newcomer", Keys.ENTER)  # another id while it waits: this one is asked
            page.until(browser, lambda d: "Trying again in" in _login_error(d))
            server = VoteServer(run, tmp_path / "server2.log", port=server.port)
            page.until(browser, lambda d: page.state(d) == "voting")  # no key pressed after the restart
            page.wait_for_pair(browser, "0 / 5")
            assert _login_error(browser) == "" and page.showing(browser)["status"] == ""
            assert browser.find_element(By.ID, "who-id").text == "newcomer"
            browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_LEFT)
            page.wait_for_pair(browser, "1 / 5")
            assert len(page.votes_of(run, "newcomer")) == 1 and page.votes_of(run, "typo") == []
        finally:
            server.stop()
