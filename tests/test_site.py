"""The calculator page: self-contained, its JavaScript equal to the Python bundle on the embedded
draws (Node.js), and a real browser that sets a profile through the form and reads the answer."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from trt_recovery import site
from trt_recovery.survival import calculator as C
from trt_recovery.survival.predict import Profile, predict


def _bundle(arrays, meta) -> C.Bundle:
    return C.Bundle.of(arrays, dict(meta, fingerprint={"posterior": "0" * 64}))  # the page shows the hash


@pytest.fixture(scope="module")
def page(mock_survival_bundle, tmp_path_factory):
    bundle = _bundle(*mock_survival_bundle)
    path = tmp_path_factory.mktemp("site") / "index.html"
    path.write_text(site.render(bundle, built="2026-11-29"), encoding="utf-8")
    return path, bundle


def test_page_is_self_contained(page):
    text = page[0].read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), "the page loads something from the network"
    assert "<script src" not in text and "<link" not in text
    assert "makeCalculator" in text and "const FAMILY" in text


def test_missing_figures_are_named(page, monkeypatch, tmp_path):
    monkeypatch.setattr(site.paths, "FIGURES_DIR", tmp_path / "none")
    monkeypatch.setattr(site.paths, "TABLES_DIR", tmp_path / "none")
    text = site.render(page[1], built="x")
    for name, _ in site.FIGURES:
        assert f"<code>{name}.png</code> is not built yet" in text
    assert "<code>summary_of_findings.csv</code> is not built yet" in text


def _x(cov_name: str, value: float) -> float:
    from trt_recovery.survival.design import COVARIATE

    return float(COVARIATE[cov_name].to_model(np.array(value)))


CASES = [
    (Profile(strategy="hcg_serm", threshold="5", covariates={"duration": 60.0, "age": 40.0}), [3.0, 12.0]),
    (Profile(strategy="gonadorelin", population="hh", covariates={"duration": 24.0, "azoospermia": 1.0}), [6.0]),
    (Profile(strategy="none", population="contraception", threshold="baseline", preparation="gel"), [1.5, 24.0]),
]


def test_javascript_equals_the_bundle_on_the_embedded_draws(page):
    """The page's sum of components and summaries, run by Node.js on the embedded draws, equal the
    Python bundle on the same (thinned, rounded) draws."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    bundle = page[1]
    data = site.page_data(bundle)
    small = site.thinned(bundle)
    js = site._asset("calculator.js")
    from trt_recovery.survival.families import get_family

    profiles = [{"strategy": p.strategy, "population": p.population, "threshold": p.threshold,
                 "preparation": p.preparation or "unknown", "x": {k: _x(k, v) for k, v in p.covariates.items()}}
                for p, _ in CASES]
    script = (f"{js}\nconst DATA = {json.dumps(data)}; const FAMILY = {get_family(bundle.meta['family']).js};"
              f"const calc = makeCalculator(DATA, FAMILY); const cases = {json.dumps([[p, t] for p, (_, t) in zip(profiles, CASES)])};"
              "console.log(JSON.stringify(cases.map(([p, t]) => calc.answer(p, t)), (k, v) => v === Infinity ? 'inf' : v));")
    res = subprocess.run([node, "-"], input=script, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    answers = json.loads(res.stdout)
    for (profile, times), js_answer in zip(CASES, answers, strict=True):
        py = small.answer(profile, times)
        for label in ("average_study", "new_study"):
            for a, b in zip(js_answer[label]["recovered_by"], py[label]["recovered_by"], strict=True):
                for k in ("median", "lower", "upper"):
                    assert a[k] == pytest.approx(b[k], rel=1e-9, abs=1e-12)
            for k in ("median", "lower", "upper"):
                assert js_answer[label]["p_never"][k] == pytest.approx(py[label]["p_never"][k], rel=1e-9)
                got = js_answer[label]["median_time_months"][k]
                want = py[label]["median_time_months"][k]
                assert (got == "inf") if not np.isfinite(want) else got == pytest.approx(want, rel=1e-9), (label, k, got, want)


def _browser():
    chromium, driver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[dev]')")
    if not (chromium and driver):
        pytest.skip("Chromium and chromedriver are not installed (Debian: apt-get install chromium chromium-driver; "
                    ".ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,1400"):
        opts.add_argument(a)
    opts.binary_location = chromium
    return webdriver.Chrome(service=Service(driver), options=opts)


def test_browser_sets_a_profile_and_reads_the_answer(page, mock_survival_fit, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    path, bundle = page
    profile, times = CASES[0]
    drv = _browser()
    try:
        drv.get(path.as_uri())
        assert drv.find_element(By.CSS_SELECTOR, "label[for=strategy]").text.startswith("Strategy")
        Select(drv.find_element(By.ID, "strategy")).select_by_value(profile.strategy)
        Select(drv.find_element(By.ID, "threshold")).select_by_value(profile.threshold)
        Select(drv.find_element(By.ID, "cov-duration")).select_by_value("60")
        Select(drv.find_element(By.ID, "cov-age")).select_by_value("40")
        box = drv.find_element(By.ID, "times")
        box.clear()
        box.send_keys("3, 12")
        # keyboard only: tab to the button and press Enter
        box.send_keys(Keys.TAB)
        drv.switch_to.active_element.send_keys(Keys.ENTER)
        cells = {c.get_attribute("data-q"): c for c in drv.find_elements(By.CSS_SELECTOR, "#answer td[data-q]")}
        assert set(cells) >= {"avg-rec-3", "avg-rec-12", "new-rec-12", "avg-median-time", "avg-p-never"}
        page_p12 = float(cells["avg-rec-12"].get_attribute("data-median"))
        page_never = float(cells["avg-p-never"].get_attribute("data-median"))
        # exactly the bundle on the page's draws ...
        small = site.thinned(bundle).answer(profile, times)
        assert page_p12 == pytest.approx(small["average_study"]["recovered_by"][1]["median"], rel=1e-9)
        # ... and predict through the graph within Monte Carlo error (the page keeps at most 2000 draws)
        full = predict(mock_survival_fit, profile, times, seed=0)
        assert page_p12 == pytest.approx(full["average_study"]["recovered_by"][1]["median"], abs=0.03)
        assert page_never == pytest.approx(full["average_study"]["p_never"]["median"], abs=0.03)
        assert "Direct evidence" in drv.find_element(By.ID, "notes").text or "No direct evidence" in drv.find_element(By.ID, "notes").text
        assert len(drv.find_elements(By.CSS_SELECTOR, "#chart svg polyline")) == 1  # the median curve is drawn
        shot = tmp_path / "calculator.png"
        drv.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        errors = [e for e in drv.get_log("browser") if e.get("level") == "SEVERE"]
        assert not errors, errors
    finally:
        drv.quit()
