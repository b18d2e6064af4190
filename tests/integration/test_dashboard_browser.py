"""The dashboard in a real browser (Debian's headless Chromium, driven over the DevTools protocol): an
incident produced by injected events appears without a reload, is acknowledged through the page, and the
model view draws its sparklines. Screenshots go to the test's output directory (and to
``$EMLOPS_SCREENSHOT_DIR`` when set, which is how docs/dashboard.png is made)."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

import pytest

from tests.integration.cdp import CHROMIUM, Browser, Page
from tests.integration.kafka_io import produce
from tests.integration.ops_support import TOKEN, Cluster, http, ops_workers, wait_for

MODEL, SOURCE = "ui-churn", "ui-api"
KEY = f"model={MODEL}|version=4"
CARD = f'article.incident[data-key="{KEY}"]'


def _predictions(start: int, count: int, shift: float, rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    return [(MODEL, {
        "type": "prediction", "request_id": f"{MODEL}-{i}", "model": MODEL, "version": "4", "timestamp": time.time(),
        "features": {"monthly_spend": round(rng.gauss(60 + shift, 8), 2), "tenure_months": round(rng.gauss(24, 6), 1)},
        "prediction": round(rng.random(), 3), "confidence": round(rng.uniform(0.8, 0.95), 3),
        "latency_ms": round(rng.gauss(20, 3), 1)}) for i in range(start, start + count)]


def _readings(count: int, rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    metrics = (("cpu_utilisation", 45.0, 4.0), ("p99_latency_ms", 80.0, 6.0))
    return [(SOURCE, {"type": "infra", "source": SOURCE, "metric": metrics[i % 2][0],
                      "value": rng.gauss(*metrics[i % 2][1:]), "timestamp": time.time()}) for i in range(count)]


@pytest.fixture(scope="module")
def ui(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)", pytrace=False)
    env = {"EMLOPS_GROUP_INTERVAL_S": "3600", "EMLOPS_RESOLVE_AFTER_S": "3600"}
    with ops_workers(bootstrap, tmp_path_factory.mktemp("ui"), env=env) as cluster:
        yield cluster


def _settled(url: str) -> None:
    """Every prediction consumed and the incident's revision unchanged for three seconds."""
    def revision() -> int | None:
        models = http("GET", f"{url}/api/v1/models?model={MODEL}&series=false").body["models"]
        if not models or models[0]["state"].get("predictions") != 1800:
            return None
        return http("GET", f"{url}/api/v1/incidents/{quote(KEY, safe='')}").body["ticket"]["revision"]

    seen: list[int | None] = []
    wait_for(lambda: seen.append(revision()) or (len(seen) >= 4 and seen[-1] is not None and len(set(seen[-4:])) == 1),
             60, "the incident to settle", every=1)


def _save(page_shot: Path) -> None:
    target = os.environ.get("EMLOPS_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(page_shot, Path(target) / page_shot.name)


def test_an_injected_incident_appears_live_and_is_acknowledged_in_the_browser(ui: Cluster, tmp_path: Path) -> None:
    s, url, rng = ui.settings, ui.urls[0], random.Random(21)

    async def scenario() -> list[str]:
        # Healthy traffic first, so the model and the service are known and all is quiet.
        await produce(s, s.topics.predictions, _predictions(0, 900, 0.0, rng))
        await produce(s, s.topics.infrastructure, _readings(600, rng))
        async with Browser(tmp_path / "chromium") as browser:
            page = await browser.new_page(f"{url}/dashboard/?refresh=1000")
            await page.wait_for("document.querySelector('#live').classList.contains('ok')", 30, "a live dashboard")
            assert await page.evaluate("!document.querySelector('#no-incidents').hidden"), "expected all quiet"
            await page.evaluate("window.__loadedOnce = 'yes'")

            # Now the monthly spend of ui-churn drifts: the page must show the incident by itself.
            await produce(s, s.topics.predictions, _predictions(900, 900, 25.0, rng))
            await page.wait_for(f"!!document.querySelector({CARD!r})", 60, "the drift incident on the page")
            assert await page.evaluate("window.__loadedOnce") == "yes", "the page reloaded"
            assert await page.evaluate("performance.getEntriesByType('navigation').length") == 1
            text = await page.evaluate(f"document.querySelector({CARD!r}).innerText")
            assert "monthly_spend" in text and "Data Operations" in text and "occurrence" in text
            assert await page.evaluate(f"document.querySelector({CARD!r}).dataset.status") in ("triggered", "updated")

            # Acknowledge it the way a person would: name, token, a comment, the button; once the incident
            # has stopped changing (new signals re-lay the card out, as they would under a person's mouse).
            await asyncio.to_thread(_settled, url)
            await page.type("#operator-name", "dana")
            await page.type("#api-token", TOKEN)
            await page.type(f"{CARD} input.comment", "checking the spend feature job")
            assert await page.evaluate(f"document.querySelector({CARD!r} + ' input.comment').value") == \
                "checking the spend feature job"
            await page.click(f"{CARD} button.ack")
            try:
                await page.wait_for(f"document.querySelector({CARD!r}).dataset.status === 'acknowledged'", 30,
                                    "the card to show the acknowledgement")
            except AssertionError as exc:
                card = await page.evaluate(f"document.querySelector({CARD!r}).innerText")
                raise AssertionError(f"{exc}\nthe card reads:\n{card}\nerrors: {page.errors()}") from None
            assert "acknowledged by dana" in await page.evaluate(f"document.querySelector({CARD!r}).innerText")
            await page.evaluate(f"document.querySelector({CARD!r} + ' details')?.setAttribute('open', '')")
            _save(await page.screenshot(tmp_path / "dashboard.png"))

            # The model view draws the monitored statistics, the drifting feature flagged.
            await page.evaluate("location.hash = '#models'")
            card = f'article.model[data-model="{MODEL}"]'
            await page.wait_for(f"document.querySelectorAll({card!r} + ' svg.spark path').length >= 3", 30,
                                "sparklines of the model")
            await page.wait_for(f"document.querySelector({card!r} + ' tr.drifting')?.innerText.includes('monthly_spend')",
                                30, "the drifting feature flagged")
            _save(await page.screenshot(tmp_path / "models.png"))

            await page.evaluate("location.hash = '#services'")
            await page.wait_for(f"!!document.querySelector('article.service[data-source=\"{SOURCE}\"] svg.spark path')",
                                30, "the service card")
            await page.evaluate("location.hash = '#history'")
            await page.wait_for(f"!!document.querySelector('#history tr[data-key=\"{KEY}\"]')", 30, "the history row")
            assert await page.evaluate("performance.getEntriesByType('navigation').length") == 1
            return page.errors()

    errors = asyncio.run(scenario())
    assert errors == [], errors
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
    ticket = http("GET", f"{url}/api/v1/incidents/{quote(KEY, safe='')}").body["ticket"]
    assert ticket["status"] == "acknowledged" and ticket["acknowledged_by"] == "dana"
    assert ticket["actions"][-1]["comment"] == "checking the spend feature job"


def test_a_page_without_the_token_says_so_instead_of_acting(ui: Cluster, tmp_path: Path) -> None:
    async def scenario() -> tuple[str, list[str]]:
        async with Browser(tmp_path / "chromium") as browser:
            page: Page = await browser.new_page(f"{ui.urls[0]}/dashboard/?refresh=1000")
            await page.wait_for("!!document.querySelector('article.incident button.resolve')", 60, "an incident card")
            await page.click("article.incident button.resolve")
            message = await page.wait_for("document.querySelector('article.incident .message').innerText", 10,
                                          "the refusal")
            return message, page.errors()

    message, errors = asyncio.run(scenario())
    assert "API token" in message and errors == []
    assert all(t["status"] != "resolved" for t in http("GET", f"{ui.urls[0]}/api/v1/incidents").body["incidents"])
