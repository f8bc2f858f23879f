"""Analysis configs: valid ones load; invalid ones are rejected naming the file and the key."""

from __future__ import annotations

import copy

import pytest
import yaml

from trt_recovery import paths
from trt_recovery.config import ConfigError, load_config, parse_config

GOOD = {
    "name": "demo",
    "model": "binomial_success",
    "data": {"populations": ["trt"]},
    "priors": {"strategy_logit_sd": 2.0},
    "sampler": {"seed": 1, "draws": 100, "tune": 100, "chains": 2},
}


def test_every_committed_config_is_valid():
    configs = sorted(paths.ANALYSIS_DIR.glob("*.yaml"))
    assert configs
    for p in configs:
        cfg = load_config(p)
        assert cfg.name == p.stem


def test_good_config_parses_with_defaults_and_prior_override():
    cfg = parse_config(GOOD, "demo.yaml")
    assert cfg.sampler.seed == 1 and cfg.sampler.backend == "pymc"
    from trt_recovery.models.binomial_success import DEFAULT_PRIORS

    assert cfg.priors == {**DEFAULT_PRIORS, "strategy_logit_sd": 2.0}
    assert DEFAULT_PRIORS["strategy_logit_sd"] != 2.0  # the override is what changed it
    assert cfg.data.populations == ("trt",)
    assert cfg.checks.rhat_max == 1.01 and cfg.checks.ess_bulk_min == 400


def _with(path: tuple, value):
    raw = copy.deepcopy(GOOD)
    d = raw
    for k in path[:-1]:
        d = d.setdefault(k, {})
    if value is KeyError:
        del d[path[-1]]
    else:
        d[path[-1]] = value
    return raw


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (_with(("colour",), "red"), "'colour': unknown key"),
        (_with(("model",), "weibull_magic"), "'model': unknown model 'weibull_magic'"),
        (_with(("sampler", "seed"), KeyError), "'sampler.seed': is required"),
        (_with(("sampler", "seed"), "abc"), "'sampler.seed': must be an integer"),
        (_with(("sampler", "draws"), 0), "'sampler.draws': must be >= 1"),
        (_with(("sampler", "backend"), "stan"), "'sampler.backend': unknown backend 'stan'"),
        (_with(("sampler", "target_accept"), 1.5), "'sampler.target_accept': must lie in (0.0, 1.0)"),
        (_with(("sampler", "mass_matrix"), "dense"), "'sampler.mass_matrix': unknown adaptation 'dense'"),
        (_with(("sampler", "max_treedepth"), 0), "'sampler.max_treedepth'"),
        (_with(("sampler", "max_treedepth"), 10.5), "'sampler.max_treedepth'"),
        (_with(("sampler", "mass_matrix"), "low_rank"), "'sampler.mass_matrix': 'low_rank' is a nutpie adaptation"),
        (_with(("sampler", "speed"), 3), "'sampler.speed': unknown key"),
        (_with(("data", "populations"), ["martians"]), "'data.populations': unknown population 'martians'"),
        (_with(("data", "strategies"), ["hcg_only"]), "'data.strategies': unknown strategy 'hcg_only'"),
        (_with(("priors", "slope_sd"), 1.0), "'priors.slope_sd': not a prior of model 'binomial_success'"),
        (_with(("priors", "study_sd_scale"), -1), "'priors.study_sd_scale': must be a positive number"),
        (_with(("checks", "rhat_max"), 5), "'checks.rhat_max': must lie in"),
        (_with(("checks", "ess_bulk_min"), True), "'checks.ess_bulk_min': must be an integer, got True"),
        (_with(("checks", "ess_bulk_min"), 1.9), "'checks.ess_bulk_min': must be an integer, got 1.9"),
        (_with(("checks", "ess_bulk_min"), "many"), "'checks.ess_bulk_min': must be an integer"),
        (_with(("checks", "ebfmi_min"), 2), "'checks.ebfmi_min': must lie in"),
        (_with(("name",), "two words"), "'name': must be a simple identifier"),
    ],
)
def test_bad_config_is_rejected(raw, fragment):
    with pytest.raises(ConfigError) as exc:
        parse_config(raw, "analysis/demo.yaml")
    assert str(exc.value).startswith("analysis/demo.yaml: ")
    assert fragment in str(exc.value)


def test_nutpie_mass_matrix_reaches_the_sampler(monkeypatch):
    """``sampler.mass_matrix`` is nutpie's ``adaptation``; the default is the diagonal (what
    ``pm.sample`` adapts). The sampling call is replaced by a recorder: what it received is checked."""
    import nutpie
    import pymc as pm

    from trt_recovery.compiled import CompiledModels
    from trt_recovery.fitting import sample

    received = []

    class Stop(Exception):
        pass

    def record(compiled, **kwargs):
        received.append(kwargs)
        raise Stop

    monkeypatch.setattr(nutpie, "sample", record)
    monkeypatch.setattr(CompiledModels, "compiled_for", lambda self, model: object())
    with pm.Model() as model:
        pm.Normal("x")
    for given, expected in (({}, "diag"), ({"mass_matrix": "low_rank"}, "low_rank")):
        raw = _with(("sampler", "backend"), "nutpie")
        raw["sampler"].update(given)
        cfg = parse_config(raw, "demo.yaml")
        assert cfg.sampler.mass_matrix == expected
        with pytest.raises(Stop):
            sample(model, cfg.sampler)
        assert received[-1]["adaptation"] == expected and received[-1]["target_accept"] == cfg.sampler.target_accept


def test_config_name_must_match_file(tmp_path):
    p = tmp_path / "other.yaml"
    p.write_text(yaml.safe_dump(GOOD))
    with pytest.raises(ConfigError, match="must equal the file name 'other'"):
        load_config(p)


def test_unknown_analysis_lists_available():
    with pytest.raises(ConfigError, match="available: .*success_rate"):
        load_config("no_such_analysis")


def test_survival_probability_priors_must_be_probabilities():
    raw = {"name": "s", "model": "survival_cure_weibull", "sampler": {"seed": 1}, "priors": {"cure_prior_prob": 1.5}}
    with pytest.raises(ConfigError, match="'priors.cure_prior_prob': must be a probability"):
        parse_config(raw, "s.yaml")


def test_extends_merges_the_parent_and_refuses_cycles(tmp_path):
    base = {**GOOD, "name": "base", "title": "Base", "sampler": {**GOOD["sampler"], "draws": 321}}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    (tmp_path / "child.yaml").write_text(yaml.safe_dump(
        {"extends": "base", "name": "child", "title": "Child", "priors": {"study_sd_scale": 0.5}}))
    cfg = load_config(tmp_path / "child.yaml")
    assert cfg.title == "Child" and cfg.sampler.draws == 321 and cfg.sampler.seed == 1
    assert cfg.priors["study_sd_scale"] == 0.5 and cfg.priors["strategy_logit_sd"] == 2.0
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({"extends": "b", "name": "a"}))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({"extends": "a", "name": "b"}))
    with pytest.raises(ConfigError, match="circular extends"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"extends": "missing", "name": "c"}))
    with pytest.raises(ConfigError, match="no such analysis config"):
        load_config(tmp_path / "c.yaml")


def test_wide_priors_config_doubles_every_survival_prior_scale():
    """'Every prior scale doubled' is true: each scale/SD of the main config is twice as large."""
    main, wide = load_config("survival"), load_config("survival_wide_priors")
    scales = [k for k in main.priors if k.endswith(("_sd", "_scale")) or k == "threshold_weight_concentration"]
    scales = [k for k in scales if k != "threshold_weight_concentration"]
    for k in scales:
        assert wide.priors[k] == pytest.approx(2 * main.priors[k]), k
    # the sampler differs only in the deeper trees (its config says why)
    from dataclasses import replace

    assert replace(wide.sampler, max_treedepth=main.sampler.max_treedepth) == main.sampler
    assert wide.sampler.max_treedepth > main.sampler.max_treedepth and wide.data == main.data
