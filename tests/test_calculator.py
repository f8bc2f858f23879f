"""The calculator bundle: the survival model's predictors split into components through the graph
(exact, checked), numpy-only answers equal to ``predict``'s, freshness, and the command line's
fast path that loads no sampler stack."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trt_recovery import paths
from trt_recovery.survival import calculator as C
from trt_recovery.survival.predict import Profile, predict

PROFILES = [
    Profile(strategy="hcg_serm", population="trt", threshold="5", covariates={"duration": 60.0, "age": 41.0}),
    Profile(strategy="gonadorelin", population="hh", threshold="any", covariates={"duration": 30.0, "azoospermia": 1.0}),
    Profile(strategy="none", population="contraception", threshold="baseline", preparation="gel"),
]


def test_summarise_is_the_projects_interval():
    from trt_recovery.summaries import summarise

    rng = np.random.default_rng(3)
    finite = rng.gamma(2.0, 3.0, size=(2, 500))
    with_inf = np.where(rng.uniform(size=finite.shape) < 0.1, np.inf, finite)
    for draws in (finite, with_inf):
        ours, theirs = C.summarise(draws), summarise(draws)
        for k in ("median", "lower", "upper"):
            assert ours[k] == pytest.approx(theirs[k], rel=1e-12), k


@pytest.mark.parametrize("i", range(len(PROFILES)))
def test_bundle_answers_as_predict_through_the_graph(mock_survival_fit, mock_survival_bundle, i):
    profile, times = PROFILES[i], [3.0, 12.0]
    ours = C.Bundle.of(*mock_survival_bundle).answer(profile, times)
    graph = predict(mock_survival_fit, profile, times, seed=0)
    for label in ("average_study", "new_study"):
        for a, b in zip(ours[label]["recovered_by"], graph[label]["recovered_by"], strict=True):
            assert a == pytest.approx(b, rel=1e-9, abs=1e-12)
        assert ours[label]["p_never"] == pytest.approx(graph[label]["p_never"], rel=1e-9)
        for k in ("median", "lower", "upper", "p_not_reached"):
            assert ours[label]["median_time_months"][k] == pytest.approx(graph[label]["median_time_months"][k], rel=1e-9)
    assert ours["note"] == graph["note"]
    assert ours["evidence"] == graph["evidence"]
    # flags are precomputed for the population-average covariates: equal where the profile is that
    if not profile.covariates:
        for t in ("3", "12"):
            assert ours["evidence_flag"][t]["flag"] == graph["evidence_flag"][t]["flag"]


def test_a_model_that_is_not_a_sum_is_refused(mock_survival_fit, monkeypatch):
    real = C.Bundle.predictor

    def drops_the_threshold(self, which, profile, new_study=False):
        out = real(self, which, profile, new_study)
        return out - self.arrays[f"{which}/threshold"][self._index["threshold"][profile.threshold]]

    monkeypatch.setattr(C.Bundle, "predictor", drops_the_threshold)
    monkeypatch.setattr(C, "_flags", lambda *a, **k: {})
    with pytest.raises(ValueError, match="not additive"):
        C.build_bundle(mock_survival_fit)


def _scratch_root(tmp_path: Path, fit, arrays, meta, monkeypatch) -> Path:
    """A project tree with the repository's data and the mocked fit as analysis 'mocksurv', and
    its bundle written where the command line looks."""
    root = tmp_path / "proj"
    shutil.copytree(paths.DATA_DIR, root / "data", ignore=shutil.ignore_patterns("*.md"))
    post = root / "analysis" / "results" / "posteriors"
    post.mkdir(parents=True)
    shutil.copy(fit.path, post / "mocksurv.nc")
    for name in ("DATA_DIR", "POSTERIORS_DIR", "CALCULATOR_DIR", "ANALYSIS_DIR"):
        rel = getattr(paths, name).relative_to(paths.ROOT)
        monkeypatch.setattr(paths, name, root / rel)
    meta = dict(meta, fingerprint=C.input_fingerprint("mocksurv", post / "mocksurv.nc", meta["model_modules"]))
    C.save_bundle(arrays, meta, C.bundle_file("mocksurv"))
    return root


def test_a_bundle_is_used_only_while_nothing_changed(tmp_path, mock_survival_fit, mock_survival_bundle, monkeypatch):
    root = _scratch_root(tmp_path, mock_survival_fit, *mock_survival_bundle, monkeypatch)
    assert C.fresh_bundle("mocksurv", seed=0) is not None
    assert C.fresh_bundle("mocksurv", seed=1) is None  # new-study draws were made with seed 0
    outcomes = root / "data" / "outcomes.csv"
    original = outcomes.read_bytes()
    outcomes.write_bytes(original + b"\n")
    assert C.fresh_bundle("mocksurv", seed=0) is None
    outcomes.write_bytes(original)
    assert C.fresh_bundle("mocksurv", seed=0) is not None
    with open(root / "analysis" / "results" / "posteriors" / "mocksurv.nc", "ab") as fh:
        fh.write(b"\0")
    assert C.fresh_bundle("mocksurv", seed=0) is None


HEAVY = ("pymc", "pytensor", "pandas", "xarray", "arviz", "arviz_stats", "scipy", "matplotlib")


def test_predict_answers_from_the_bundle_without_the_sampler_stack(tmp_path, mock_survival_fit, mock_survival_bundle,
                                                                    monkeypatch):
    root = _scratch_root(tmp_path, mock_survival_fit, *mock_survival_bundle, monkeypatch)
    code = ("import json, sys; from trt_recovery.cli import main; "
            "rc = main(['predict', '--analysis', 'mocksurv', '--strategy', 'hcg_serm', '--threshold', '5', "
            "'--trt-months', '60', '--age', '41', '--times', '3,12', '--format', 'json']); "
            f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))")
    env = dict(os.environ, TRT_RECOVERY_ROOT=str(root))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=root, timeout=120)
    assert res.returncode == 0, res.stderr
    body, loaded = res.stdout.rsplit("\n", 2)[0], json.loads(res.stdout.strip().splitlines()[-1])
    assert loaded == []
    out = json.loads(body)
    assert out["answered_from"] == "calculator bundle"
    expected = C.Bundle.of(*mock_survival_bundle).answer(PROFILES[0], [3.0, 12.0])
    assert out["average_study"]["recovered_by"][1]["median"] == pytest.approx(
        expected["average_study"]["recovered_by"][1]["median"], rel=1e-12)


def test_family_javascript_matches_numpy():
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the calculator's JavaScript is checked in the browser test only")
    from trt_recovery.survival.families import FAMILIES

    rng = np.random.default_rng(0)
    t, mu, k = rng.uniform(0.1, 40, 50), rng.normal(1.5, 0.8, 50), rng.uniform(0.4, 3.0, 50)
    p = rng.uniform(0.01, 0.99, 50)
    checked = 0
    for fam in FAMILIES.values():
        if fam.js is None:
            continue
        script = (f"const F = {fam.js}; const a = {json.dumps([t.tolist(), mu.tolist(), k.tolist(), p.tolist()])};"
                  "console.log(JSON.stringify([a[0].map((t, i) => F.cdf(t, a[1][i], a[2][i])),"
                  " a[3].map((p, i) => F.quantile(p, a[1][i], a[2][i]))]));")
        cdf, q = json.loads(subprocess.run([node, "-e", script], capture_output=True, text=True, check=True).stdout)
        np.testing.assert_allclose(cdf, np.exp(fam.log_cdf(t, mu, k)), rtol=1e-12)
        np.testing.assert_allclose(q, fam.quantile(p, mu, k), rtol=1e-12)
        checked += 1
    assert checked >= 2
