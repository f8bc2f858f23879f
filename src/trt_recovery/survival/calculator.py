r"""Answers for any profile without the sampler stack: the survival fit's linear predictors per
posterior draw, split through the model's graph into additive components.

The linear predictors (:func:`trt_recovery.survival.design.linear_predictors`) are sums of one term
per factor level, threshold and covariate. For a fit, :func:`build_bundle` asks the graph
(:class:`trt_recovery.survival.predict.Predictions`, one call, one seed) for the predictors of

* the reference profile :math:`R` (strategy ``none``, population ``trt``, threshold ``any``,
  preparation unknown, every covariate at its population average): ``base``;
* :math:`R` with one factor level or threshold changed: that level's component
  :math:`\lambda(R_{\ell}) - \lambda(R)`;
* :math:`R` with covariate :math:`c` at two values :math:`v_0, v_1`: the component of any value
  :math:`v` is :math:`a_c\, x_c(v) + b_c` with :math:`x_c` the covariate's own transform
  (:attr:`~trt_recovery.survival.design.Covariate.to_model`), :math:`a_c` the per-draw slope
  and :math:`b_c = -a_c \bar x_c` (the population average is per draw);

for both predictors (log time scale :math:`\mu`, non-recovery logit :math:`\eta`), plus the new
study's effects and the family's shape. A profile's predictors are then

.. math::

    \lambda(P) = \text{base} + \text{strategy} + \text{population} + \text{threshold}
        + [\text{androgen-exposed}]\,(\text{preparation} + \textstyle\sum_{c\ \text{androgen-only}})
        + \textstyle\sum_{c\ \text{other}}

(hh arms have no androgen exposure: their preparation is fixed and androgen-only covariates are
0, as in :func:`~trt_recovery.survival.design.prediction_block`). Nothing here restates the model:
the components come from the graph, and :func:`build_bundle` checks the sum against the graph on
random profiles (every factor, threshold and covariate drawn) and refuses to write a bundle that
differs by more than :data:`EXACT` (a model with interactions would fail here, not silently).

From the components, :class:`Bundle` answers what :func:`trt_recovery.survival.predict.predict`
answers, importing only numpy: P(recovered by t), the median time and P(never) for an average and
a new study. Evidence flags (power-scaling sensitivity and contraction need the whole posterior and
arviz-stats) are computed at build time by the same code as ``predict`` for every strategy x
population x threshold at :data:`FLAG_TIMES`, at the population-average covariates. The calculator
page (:mod:`trt_recovery.site`) embeds thinned components and evaluates the same sum in
JavaScript.

A bundle records the posterior file's SHA-256, the model's code identity and the hashes of the data
tables and the analysis config; :func:`fresh_bundle` returns it only while all of them still match,
so the command line falls back to the graph when anything changed since the bundle was built.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from trt_recovery import paths
from trt_recovery.survival import design
from trt_recovery.survival.families import get_family
from trt_recovery.survival.profile import Profile, covariate_note_text
from trt_recovery.summaries import summarise_numpy as summarise

#: Largest difference allowed between the graph and the sum of components (both float64).
EXACT = 1e-8
#: Times (months) at which the evidence flags are precomputed.
FLAG_TIMES = (3.0, 6.0, 12.0, 24.0)
#: Profiles drawn at random to check the decomposition against the graph.
CHECK_PROFILES = 40
PREDICTORS = ("mu", "eta")
#: the population without androgen exposure (:func:`trt_recovery.survival.design.androgen_exposed`);
#: the check against the graph covers it (random profiles include it)
NO_ANDROGEN_POPULATION = "hh"
FORMAT_VERSION = 1


def bundle_file(analysis: str) -> Path:
    return paths.CALCULATOR_DIR / f"{analysis}.npz"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def input_fingerprint(analysis: str, posterior: Path, model_modules: list[str]) -> dict[str, str]:
    """Hashes of everything an answer depends on: the posterior file, the model's source files,
    the data tables and the analysis config (raw bytes; cheap, no imports)."""
    files = {"posterior": posterior}
    for m in model_modules:
        files[f"source:{m}"] = paths.PACKAGE_DIR.joinpath(*m.split(".")[1:]).with_suffix(".py")
    for name in ("schema.yaml", "studies.csv", "arms.csv", "outcomes.csv"):
        files[f"data:{name}"] = paths.DATA_DIR / name
    cfg = paths.analysis_config(analysis)
    files["config"] = cfg
    if cfg.exists():  # a config that extends another depends on it too
        for line in cfg.read_text(encoding="utf-8").splitlines():
            if line.startswith("extends:"):
                files["config:extends"] = paths.analysis_config(line.split(":", 1)[1].strip().strip("'\""))
    out = {}
    for key, p in files.items():
        out[key] = _sha256(p) if p.exists() else "missing"
    return out


# ------------------------------------------------------------------------------------------------
# Building (needs the fit and the graph)


def _levels(fit) -> dict[str, list[str]]:
    from trt_recovery.schema import load_schema

    schema = load_schema()
    return {"strategy": schema.terms("strategy"), "population": schema.terms("population"),
            "threshold": schema.terms("threshold"),
            "preparation": [lv for lv in design.FACTOR["preparation"].all_levels() if lv != design.NO_ANDROGEN]}


def _reference() -> Profile:
    return Profile(strategy=design.FACTOR["strategy"].reference, population=design.FACTOR["population"].reference,
                   threshold="any", preparation=None)


def _covariate_values(cov) -> tuple[float, float]:
    lo, hi = cov.bounds
    return lo + 0.25 * (hi - lo), lo + 0.75 * (hi - lo)


def _random_profiles(levels: dict[str, list[str]], n: int, rng: np.random.Generator) -> list[Profile]:
    out = []
    for _ in range(n):
        covs = {}
        for cov in design.COVARIATES:
            if rng.uniform() < 0.7:
                lo, hi = cov.bounds
                covs[cov.name] = float(rng.uniform(lo + 0.01 * (hi - lo), hi))
        prep = str(rng.choice(levels["preparation"]))
        out.append(Profile(strategy=str(rng.choice(levels["strategy"])), population=str(rng.choice(levels["population"])),
                           threshold=str(rng.choice(levels["threshold"])),
                           preparation=None if prep == design.UNKNOWN_PREPARATION else prep, covariates=covs))
    return out


def _components_from(pred, levels, layout) -> dict[str, np.ndarray]:
    """Components of both predictors (and the new study's effects) from graph predictions laid
    out by :func:`_layout`; arrays (draws,) or (levels, draws)."""
    flat = {"mu": pred.mu.values.reshape(-1, pred.mu.sizes["profile"]),
            "eta": pred.eta.values.reshape(-1, pred.eta.sizes["profile"]),
            "mu_new": pred.mu_new.values.reshape(-1, pred.mu.sizes["profile"]),
            "eta_new": pred.eta_new.values.reshape(-1, pred.eta.sizes["profile"])}
    out = {}
    for k in PREDICTORS:
        v = flat[k]
        base = v[:, layout["base"]]
        out[f"{k}/base"] = base
        for factor in ("strategy", "population", "threshold", "preparation"):
            out[f"{k}/{factor}"] = np.stack([v[:, i] - base for i in layout[factor]])
        a, b = [], []
        for cov, (i0, i1) in zip(design.COVARIATES, layout["covariates"], strict=True):
            v0, v1 = _covariate_values(cov)
            x0, x1 = (float(cov.to_model(np.array(x))) for x in (v0, v1))
            slope = (v[:, i1] - v[:, i0]) / (x1 - x0)
            a.append(slope)
            b.append(v[:, i0] - base - slope * x0)
        out[f"{k}/cov_a"], out[f"{k}/cov_b"] = np.stack(a), np.stack(b)
        new = flat[f"{k}_new"] - v
        out[f"{k}/new_study"] = new[:, layout["base"]]
        spread = np.max(np.abs(new - new[:, [layout["base"]]]))
        if spread > EXACT:
            raise ValueError(f"the new study's effect on {k} differs between profiles by {spread:.3g}: "
                             "it is not one shared draw, so it cannot be a component")
    return out


def _layout(levels: dict[str, list[str]]) -> tuple[list[Profile], dict]:
    ref = _reference()
    profiles, layout = [ref], {"base": 0}
    for factor in ("strategy", "population", "threshold", "preparation"):
        idx = []
        for lv in levels[factor]:
            value = None if factor == "preparation" and lv == design.UNKNOWN_PREPARATION else lv
            idx.append(len(profiles))
            profiles.append(Profile(**{**asdict(ref), factor: value}))
        layout[factor] = idx
    layout["covariates"] = []
    for cov in design.COVARIATES:
        pair = []
        for v in _covariate_values(cov):
            pair.append(len(profiles))
            profiles.append(Profile(**{**asdict(ref), "covariates": {cov.name: v}}))
        layout["covariates"].append(tuple(pair))
    return profiles, layout


def build_bundle(fit, seed: int = 0, check_seed: int = 20261129) -> tuple[dict[str, np.ndarray], dict]:
    """Components (arrays over posterior draws, chains stacked) and metadata of a survival fit.

    Raises ``ValueError`` when the sum of components differs from the graph on any of
    :data:`CHECK_PROFILES` random profiles by more than :data:`EXACT`.
    """
    from trt_recovery.survival.predict import Predictions, estimable_covariates, evidence, evidence_note

    levels = _levels(fit)
    profiles, layout = _layout(levels)
    rng = np.random.default_rng(check_seed)
    checks = _random_profiles(levels, CHECK_PROFILES, rng)
    groups = ["posterior"] + (["prior"] if "prior" in fit.tree.children else [])
    arrays: dict[str, np.ndarray] = {}
    for group in groups:
        pred = Predictions(fit, profiles + checks, seed=seed, group=group)
        comp = _components_from(pred, levels, layout)
        bundle_like = Bundle(comp, {"levels": levels, "covariates": _covariate_meta(fit, estimable_covariates(fit))})
        n = len(profiles)
        for k in PREDICTORS:
            graph = getattr(pred, k).values.reshape(-1, n + len(checks))[:, n:]
            summed = np.stack([bundle_like.predictor(k, p) for p in checks], axis=1)
            worst = float(np.max(np.abs(graph - summed)))
            if not worst <= EXACT:
                raise ValueError(f"{fit.describe_source()}: the sum of components differs from the graph by {worst:.3g} "
                                 f"on {k} ({group} draws); the model is not additive in its factors and covariates")
        prefix = "" if group == "posterior" else "prior:"
        arrays.update({prefix + k: v for k, v in comp.items()})
        shape = fit.tree[group].to_dataset()[pred.family.shape_variable].values.reshape(-1)
        arrays[prefix + "shape"] = shape

    meta = {
        "format": FORMAT_VERSION, "analysis": fit.analysis, "model": fit.model, "family": fit.spec.family,
        "seed": seed, "chains": int(fit.posterior.sizes["chain"]), "draws": int(fit.posterior.sizes["draw"]),
        "levels": levels, "covariates": _covariate_meta(fit, estimable_covariates(fit)),
        "model_modules": list(fit.spec.source_modules),
        "evidence": {}, "notes": {},
    }
    for s in levels["strategy"]:
        for p in levels["population"]:
            key = f"{s}|{p}"
            meta["evidence"][key] = {k: v for k, v in evidence(fit, s, p).items()}
            meta["notes"][key] = evidence_note(fit, Profile(strategy=s, population=p))
    meta["flags"] = _flags(fit, arrays, meta) if "prior" in groups else {}
    meta["flag_times"] = list(FLAG_TIMES)
    return arrays, meta


def _covariate_meta(fit, estimable: dict[str, bool]) -> list[dict]:
    return [{"name": c.name, "label": c.label, "cli_flag": c.cli_flag, "bounds": list(c.bounds),
             "androgen_only": c.androgen_only, "estimable": bool(estimable.get(c.name))} for c in design.COVARIATES]


def _flags(fit, arrays, meta) -> dict:
    """Evidence flags of P(recovered by t) per strategy x population x threshold at FLAG_TIMES
    (population-average covariates, unknown preparation, average study)."""
    import xarray as xr

    from trt_recovery.survival.predict import evidence_flags

    post, prior = Bundle.of(arrays, meta), Bundle.of(arrays, meta, group="prior")
    chains, draws = meta["chains"], meta["draws"]
    quantities, where = {}, {}
    for s in meta["levels"]["strategy"]:
        for p in meta["levels"]["population"]:
            for h in meta["levels"]["threshold"]:
                prof = Profile(strategy=s, population=p, threshold=h)
                rp, rq = post.recovered_by(prof, FLAG_TIMES), prior.recovered_by(prof, FLAG_TIMES)
                for j, t in enumerate(FLAG_TIMES):
                    key = f"q{len(quantities)}"
                    da = xr.DataArray(rp[:, j].reshape(chains, draws), dims=("chain", "draw"))
                    quantities[key] = (rq[:, j], da, s)
                    where[key] = f"{s}|{p}|{h}|{t:g}"
    cols = evidence_flags(fit, quantities)
    return {where[k]: {kk: (None if isinstance(vv, float) and not np.isfinite(vv) else vv) for kk, vv in c.items()}
            for k, c in cols.items()}


def save_bundle(arrays: dict[str, np.ndarray], meta: dict, target: Path) -> Path:
    """Write a bundle (``.npz`` components and ``.json`` metadata), each file atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.stem + ".tmp.npz")
    np.savez_compressed(tmp, **{k.replace("/", "__").replace(":", "--"): v for k, v in arrays.items()})
    tmp.replace(target)
    meta_path = target.with_suffix(".json")
    tmp_meta = meta_path.with_name(meta_path.name + ".tmp")
    tmp_meta.write_text(json.dumps(meta, indent=1, default=float), encoding="utf-8")
    tmp_meta.replace(meta_path)
    return target


def write_bundle(fit, seed: int = 0) -> Path:
    """Build and save the bundle of a fit (``analysis/results/calculator/<analysis>.npz`` + ``.json``)."""
    arrays, meta = build_bundle(fit, seed=seed)
    meta["fingerprint"] = input_fingerprint(fit.analysis, Path(fit.path), meta["model_modules"])
    return save_bundle(arrays, meta, bundle_file(fit.analysis))


# ------------------------------------------------------------------------------------------------
# Answering (numpy only)


class Bundle:
    """Components of one fit, and the answers that follow from them.

    Parameters
    ----------
    arrays : dict
        ``"{mu,eta}/{base,strategy,population,threshold,preparation,cov_a,cov_b,new_study}"`` and
        ``"shape"``, over posterior draws (chains stacked).
    meta : dict
        Levels, covariates, evidence, notes, flags, seed and fingerprint (:func:`build_bundle`).
    """

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict):
        self.arrays, self.meta = arrays, meta
        self._index = {f: {lv: i for i, lv in enumerate(levels)} for f, levels in meta["levels"].items()}

    @classmethod
    def of(cls, arrays: dict[str, np.ndarray], meta: dict, group: str = "posterior") -> Bundle:
        """The bundle of one group's draws from :func:`build_bundle`'s arrays (prior arrays carry
        a ``prior:`` prefix)."""
        if group == "posterior":
            return cls({k: v for k, v in arrays.items() if not k.startswith("prior:")}, meta)
        return cls({k.removeprefix("prior:"): v for k, v in arrays.items() if k.startswith("prior:")}, meta)

    @classmethod
    def load(cls, analysis_or_path: str | Path) -> Bundle:
        path = Path(analysis_or_path) if str(analysis_or_path).endswith(".npz") else bundle_file(str(analysis_or_path))
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        with np.load(path) as z:
            arrays = {k.replace("__", "/").replace("--", ":"): z[k] for k in z.files}
        return cls.of(arrays, meta)

    # ---- predictors ------------------------------------------------------------------------------
    def check(self, profile: Profile) -> None:
        """Raise ProfileError for a level the bundle does not know (the profile is already
        checked against the schema by :meth:`Profile.check`)."""
        from trt_recovery.survival.profile import ProfileError

        for factor in ("strategy", "population", "threshold"):
            if getattr(profile, factor) not in self._index[factor]:
                raise ProfileError(f"the calculator bundle knows no {factor} {getattr(profile, factor)!r}")
        if profile.preparation is not None and profile.preparation not in self._index["preparation"]:
            raise ProfileError(f"the calculator bundle knows no preparation {profile.preparation!r}")

    def predictor(self, which: str, profile: Profile, new_study: bool = False) -> np.ndarray:
        """Per-draw ``mu`` or ``eta`` of a profile (the sum in the module docstring)."""
        a = self.arrays
        out = a[f"{which}/base"].copy()
        for factor in ("strategy", "population", "threshold"):
            out += a[f"{which}/{factor}"][self._index[factor][getattr(profile, factor)]]
        exposed = profile.population != NO_ANDROGEN_POPULATION
        if exposed:
            prep = profile.preparation or design.UNKNOWN_PREPARATION
            out += a[f"{which}/preparation"][self._index["preparation"][prep]]
        for i, cov in enumerate(design.COVARIATES):
            value = profile.covariates.get(cov.name)
            if value is None or (cov.androgen_only and not exposed):
                continue
            out += a[f"{which}/cov_a"][i] * float(cov.to_model(np.array(value))) + a[f"{which}/cov_b"][i]
        if new_study:
            out += a[f"{which}/new_study"]
        return out

    # ---- quantities ------------------------------------------------------------------------------
    @property
    def family(self):
        return get_family(self.meta["family"])

    def recovered_by(self, profile: Profile, times, new_study: bool = False) -> np.ndarray:
        """P(recovered by t) per draw, shape (draws, times)."""
        mu, eta = (self.predictor(k, profile, new_study)[:, None] for k in PREDICTORS)
        t = np.asarray(times, float)[None, :]
        k = self.arrays["shape"][:, None]
        return np.exp(self.family.log_cdf(t, mu, k)) / (1.0 + np.exp(eta))

    def median_time(self, profile: Profile, new_study: bool = False) -> np.ndarray:
        mu, eta = (self.predictor(k, profile, new_study) for k in PREDICTORS)
        p_rec = 1.0 / (1.0 + np.exp(eta))
        ok = p_rec > 0.5
        q = self.family.quantile(np.where(ok, 0.5 / p_rec, 0.5), mu, self.arrays["shape"])
        return np.where(ok, q, np.inf)

    def p_never(self, profile: Profile, new_study: bool = False) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.predictor("eta", profile, new_study)))

    def answer(self, profile: Profile, times) -> dict:
        """What :func:`trt_recovery.survival.predict.predict` returns, from the components."""
        self.check(profile)
        key = f"{profile.strategy}|{profile.population}"
        estimable = {c["name"]: c["estimable"] for c in self.meta["covariates"]}
        notes = [n for n in (self.meta["notes"][key], covariate_note_text(estimable, profile)) if n]
        out = {"profile": asdict(profile), "times": [float(t) for t in times], "note": " ".join(notes),
               "evidence": self.meta["evidence"][key], "answered_from": "calculator bundle",
               "flag_times": self.meta["flag_times"]}
        for label, new in (("average_study", False), ("new_study", True)):
            curve = self.recovered_by(profile, times, new)
            med = self.median_time(profile, new)
            med_s = summarise(med)
            med_s["p_not_reached"] = float(np.mean(~np.isfinite(med)))
            med_s["mcse_median"] = None
            out[label] = {"recovered_by": [summarise(curve[:, j]) for j in range(len(times))],
                          "median_time_months": med_s, "p_median_not_reached": med_s["p_not_reached"],
                          "p_never": summarise(self.p_never(profile, new))}
        flags = {}
        for t in times:
            f = self.meta["flags"].get(f"{profile.strategy}|{profile.population}|{profile.threshold}|{float(t):g}")
            if f is not None:
                flags[f"{float(t):g}"] = {"flag": f["evidence_flag"], **{k: v for k, v in f.items() if k != "evidence_flag"}}
        if flags:
            out["evidence_flag"] = flags
        return out


def fresh_bundle(analysis: str, seed: int = 0) -> Bundle | None:
    """The bundle of an analysis if it exists, was built with ``seed`` and nothing it depends on
    changed since (else None: answer through the graph)."""
    path = bundle_file(analysis)
    meta_path = path.with_suffix(".json")
    if not (path.exists() and meta_path.exists()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if meta.get("format") != FORMAT_VERSION or meta.get("seed") != seed:
        return None
    now = input_fingerprint(analysis, paths.posterior_file(analysis), meta.get("model_modules", []))
    if now != meta.get("fingerprint"):
        return None
    return Bundle.load(path)
