r"""The survival model's regression structure, in one place.

Everything that turns an arm (or a profile to predict) into its linear predictors lives here: the
factors with their reference levels, the arm covariates with their transforms, the parameters and
their priors, and the two linear predictors

.. math::

    \mu &= \alpha + \sum_{f} \beta^{f}_{\ell_f} + \theta_h + \sum_c b_c\, x_c + \text{study}_\mu \\
    \operatorname{logit}\pi &= \gamma + \sum_{f} \delta^{f}_{\ell_f} + \eta_h + \sum_c c_c\, x_c
        + \text{study}_\pi

(:math:`f` runs over the factors strategy, population and androgen preparation, each with a
reference level whose effect is 0; :math:`h` is the recovery threshold; :math:`c` over the arm
covariates). The PyMC graph (:mod:`trt_recovery.models.survival_cure`), posterior predictions
(:mod:`trt_recovery.survival.predict`, through the same graph), the simulator
(:mod:`trt_recovery.survival.simulate`) and the parameter-recovery study all call
:func:`linear_predictors`; nothing else writes the predictor. The function works on numpy arrays
(the simulator passes true values) and on PyTensor tensors (the model).

Adding an arm covariate means: a column in ``data/schema.yaml``, carrying it in
:mod:`trt_recovery.harmonise`, and one :class:`Covariate` entry in :data:`COVARIATES` below
(the graph, predictions, the CLI's ``predict`` flags, simulation and reports follow).

Only levels with data are sampled
---------------------------------
A factor level (or an unordered threshold) that no used arm has is not a parameter of the fit:
it is touched by no observation, so its posterior is its prior. It is drawn from that prior when
predictions are made (:func:`prediction_block`, through ``pm.sample_posterior_predictive`` with
an explicit seed), so a prediction for a strategy without data means exactly what it did before
("prior plus structure borrowed from the rest") while NUTS works in fewer dimensions.
"""

from __future__ import annotations

from trt_recovery.errors import UnknownNameError

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from trt_recovery.schema import load_schema

if TYPE_CHECKING:  # pandas loads lazily: the command line checks a profile without it
    import pandas as pd

#: Level of an arm without androgen exposure (hypogonadotropic hypogonadism): its own preparation.
NO_ANDROGEN = "none_hh"
#: Preparation of an arm that does not report one.
UNKNOWN_PREPARATION = "unknown"
AGE_CENTRE, AGE_SCALE = 35.0, 10.0


def _lib(*xs):
    from trt_recovery.survival.families import _is_tensor

    if _is_tensor(*xs):
        import pytensor.tensor as pt

        return pt
    return np


# ------------------------------------------------------------------------------------------------
# Factors


@dataclass(frozen=True)
class Factor:
    """A categorical arm attribute with a reference level (effect 0) and one effect per other level.

    ``effects`` lists ``(parameter, prior_key, predictor)`` with predictor ``"time"`` (log time
    scale) or ``"cure"`` (non-recovery logit).
    """

    name: str
    reference: str
    effects: tuple[tuple[str, str, str], ...]
    extra_levels: tuple[str, ...] = ()
    vocabulary: str = ""

    def all_levels(self) -> list[str]:
        """Every level a row may take (the schema's vocabulary plus the model's own levels)."""
        return load_schema().terms(self.vocabulary or self.name) + list(self.extra_levels)

    def free_levels(self) -> list[str]:
        return [lv for lv in self.all_levels() if lv != self.reference]


FACTORS: tuple[Factor, ...] = (
    Factor("strategy", "none", (("strategy_time", "strategy_time_sd", "time"), ("strategy_cure", "strategy_cure_sd", "cure"))),
    Factor("population", "trt",
           (("population_time", "population_time_sd", "time"), ("population_cure", "population_cure_sd", "cure"))),
    Factor("preparation", "short_ester_injection", (("preparation_time", "preparation_sd", "time"),),
           extra_levels=(UNKNOWN_PREPARATION, NO_ANDROGEN), vocabulary="androgen_preparation"),
)
FACTOR = {f.name: f for f in FACTORS}


def unobserved_dim(name: str) -> str:
    return f"{name}_unobserved"


# ------------------------------------------------------------------------------------------------
# Covariates


@dataclass(frozen=True)
class Covariate:
    """An arm-level covariate.

    ``column`` is the harmonised column (raw units), ``to_model`` the transform to the model scale.
    ``kind`` is ``"continuous"`` (a missing arm value is latent, drawn from a normal population
    distribution whose mean and spread are learnt) or ``"fraction"`` (a missing value is latent with
    a Beta prior). ``androgen_only``: the covariate is 0 for arms without androgen exposure (hh).
    A profile that leaves the covariate unset takes its population average.
    """

    name: str
    variable: str
    column: str
    kind: str
    to_model: Callable[[np.ndarray], np.ndarray]
    label: str
    cli_flag: str
    bounds: tuple[float, float]
    androgen_only: bool = False

    @property
    def coefficients(self) -> tuple[str, str]:
        return f"{self.name}_time", f"{self.name}_cure"


COVARIATES: tuple[Covariate, ...] = (
    Covariate("duration", "log_duration", "androgen_duration_months", "continuous",
              lambda m: np.log(np.asarray(m, float) / 12.0), "duration of androgen use (months)", "--trt-months",
              (0.0, 600.0), androgen_only=True),
    Covariate("age", "age_std", "age_years", "continuous",
              lambda a: (np.asarray(a, float) - AGE_CENTRE) / AGE_SCALE, "age (years)", "--age", (12.0, 90.0)),
    Covariate("azoospermia", "azoospermia_fraction", "azoospermic_fraction", "fraction",
              lambda f: np.asarray(f, float), "fraction azoospermic at time zero", "--azoospermic-fraction",
              (0.0, 1.0)),
)
COVARIATE = {c.name: c for c in COVARIATES}
#: a covariate enters the model only when at least this many applicable arms report it, with
#: different values (with fewer its coefficient is not identified: outputs say so)
MIN_REPORTING = 2


# ------------------------------------------------------------------------------------------------
# Tables of rows (arms of a fit, or profiles to predict)


def _azoospermic_fraction(a: pd.DataFrame) -> pd.Series:
    import pandas as pd

    status = a["baseline_sperm_status"].astype(object)
    frac = pd.Series(np.nan, index=a.index)
    frac[status == "azoospermic"] = 1.0
    frac[status.isin(["severe_oligozoospermic", "normal"])] = 0.0
    if "n_azoospermic" in a and "arm_n" in a:
        counted = pd.to_numeric(a["n_azoospermic"], errors="coerce") / pd.to_numeric(a["arm_n"], errors="coerce")
        frac = frac.fillna(counted)
    return frac


def arm_table(used: pd.DataFrame) -> pd.DataFrame:
    """One row per arm of the used rows: factors, study and every covariate in raw units."""
    import pandas as pd

    a = used.drop_duplicates("arm_id").set_index("arm_id")
    out = pd.DataFrame(index=a.index)
    out["study_id"] = a["study_id"]
    out["strategy"] = a["strategy"]
    out["population"] = a["population"]
    prep = a["androgen_preparation"].astype(object)
    prep = prep.where(prep.notna(), UNKNOWN_PREPARATION)
    out["preparation"] = prep.where(a["population"] != "hh", NO_ANDROGEN)
    a = a.assign(azoospermic_fraction=_azoospermic_fraction(a))
    for cov in COVARIATES:
        out[cov.column] = pd.to_numeric(a[cov.column], errors="coerce").astype(float)
    return out


def androgen_exposed(table: pd.DataFrame) -> np.ndarray:
    return (table["population"] != "hh").to_numpy()


def included_covariates(arms: pd.DataFrame) -> list[Covariate]:
    """Covariates reported by at least MIN_REPORTING applicable arms with different values."""
    out = []
    for cov in COVARIATES:
        applicable = androgen_exposed(arms) if cov.androgen_only else np.ones(len(arms), bool)
        reported = arms.loc[applicable, cov.column].dropna()
        if len(reported) >= MIN_REPORTING and reported.nunique() > 1:
            out.append(cov)
    return out


def profile_table(profiles: Sequence) -> pd.DataFrame:
    """Rows to predict from :class:`trt_recovery.survival.predict.Profile` objects (raw units;
    NaN = the population average of that covariate)."""
    import pandas as pd

    rows = []
    for p in profiles:
        hh = p.population == "hh"
        prep = NO_ANDROGEN if hh else (p.preparation or UNKNOWN_PREPARATION)
        row = {"strategy": p.strategy, "population": p.population, "preparation": prep, "threshold": p.threshold}
        for cov in COVARIATES:
            v = p.covariates.get(cov.name)
            row[cov.column] = np.nan if v is None else float(v)
        rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------------
# The threshold ladder


def ladder_segments(used: Sequence[str]) -> list[tuple[str, list[str]]]:
    """The ladder's steps grouped into segments that end at the used thresholds.

    Returns ``[(label, steps)]``: each segment is named by its strictest threshold and holds the
    ladder steps (named by the threshold they lead to) from the previous used threshold (or
    ``any``) up to it; steps above the strictest used threshold form a last segment ending at the
    top of the ladder. With ``used`` = the whole ladder every step is its own segment.

    The model's prior splits a half-normal total shift over the ladder's steps with symmetric
    Dirichlet weights; by the aggregation property of the Dirichlet, the segment weights are
    Dirichlet with concentration (concentration x segment size) and the split within a segment is
    an independent symmetric Dirichlet. Only the segment weights touch the data (every observed
    threshold ends a segment), so only they are sampled; splits within a segment are drawn from
    their prior when a prediction asks for an intermediate threshold.
    """
    ladder = list(load_schema().threshold_ladder)
    top = len(ladder) - 1
    ranks = sorted({ladder.index(t) for t in used if t in ladder and ladder.index(t) > 0})
    if not ranks or ranks[-1] != top:
        ranks.append(top)
    out, prev = [], 0
    for r in ranks:
        out.append((ladder[r], ladder[prev + 1:r + 1]))
        prev = r
    return out


def segments_from_labels(labels: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Rebuild the segments of :func:`ladder_segments` from their labels."""
    return ladder_segments(list(labels))


# ------------------------------------------------------------------------------------------------
# Coordinates


def coords_for(arms: pd.DataFrame, thresholds: Sequence[str]) -> dict[str, list[str]]:
    """Coordinates of a fit: observed non-reference factor levels, ladder steps, free thresholds."""
    schema = load_schema()
    coords: dict[str, list[str]] = {
        "arm": arms.index.tolist(),
        "study": sorted(arms["study_id"].unique().tolist()),
        "threshold_segment": [label for label, _ in ladder_segments(thresholds)],
        "threshold_free": [t for t in schema.unordered_thresholds() if t in set(thresholds)],
    }
    for f in FACTORS:
        present = set(arms[f.name])
        coords[f.name] = [lv for lv in f.free_levels() if lv in present]
    return coords


def prediction_coords(coords: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """The levels a prediction model adds: every factor level and unordered threshold without data."""
    schema = load_schema()
    out = {}
    for f in FACTORS:
        out[unobserved_dim(f.name)] = [lv for lv in f.free_levels() if lv not in coords[f.name]]
    out[unobserved_dim("threshold_free")] = [t for t in schema.unordered_thresholds() if t not in coords["threshold_free"]]
    return out


# ------------------------------------------------------------------------------------------------
# Parameters (inside a pm.Model context)


def declare_parameters(priors: Mapping[str, float], coords: Mapping[str, list[str]], shape_name: str) -> dict:
    r"""Declare every population-level parameter of the survival model; return them by name.

    Priors (all in ``priors``, see ``DEFAULT_PRIORS`` of the model): median time scale
    :math:`e^\alpha` log-normal around ``time_median_months``; the family's shape log-normal around
    ``shape_median``; non-recovery :math:`\text{logit}^{-1}(\gamma)` centred on ``cure_prior_prob``;
    factor effects normal; the monotone threshold ladder as a half-normal total shift split over the
    steps by symmetric Dirichlet weights with concentration ``threshold_weight_concentration`` (so
    unused intermediate levels do not inflate the prior), sampled as segment weights
    (:func:`ladder_segments`); unordered thresholds normal.
    """
    import pymc as pm

    par: dict = {}
    par["time_intercept"] = pm.Normal("time_intercept", np.log(priors["time_median_months"]), priors["time_log_sd"])
    par["shape"] = pm.LogNormal(shape_name, np.log(priors["shape_median"]), priors["shape_log_sd"])
    p0 = priors["cure_prior_prob"]
    par["cure_intercept"] = pm.Normal("cure_intercept", np.log(p0 / (1 - p0)), priors["cure_logit_sd"])
    for f in FACTORS:
        if coords[f.name]:
            for pname, prior_key, _ in f.effects:
                par[pname] = pm.Normal(pname, 0.0, priors[prior_key], dims=f.name)
    import pytensor.tensor as pt

    sizes = np.array([len(steps) for _, steps in segments_from_labels(coords["threshold_segment"])], dtype=float)
    conc = priors["threshold_weight_concentration"]
    for kind in ("time", "cure"):
        total = pm.HalfNormal(f"threshold_{kind}_total", priors[f"threshold_step_{kind}_scale"])
        if len(sizes) > 1:
            weights = pm.Dirichlet(f"threshold_{kind}_weights", conc * sizes, dims="threshold_segment")
        else:
            weights = pt.ones(1)
        par[f"threshold_{kind}_step"] = pm.Deterministic(f"threshold_{kind}_step", total * weights,
                                                         dims="threshold_segment")
        if coords["threshold_free"]:
            par[f"threshold_{kind}_free"] = pm.Normal(f"threshold_{kind}_free", 0.0, priors["threshold_free_sd"],
                                                      dims="threshold_free")
    return par


def declare_study_effects(priors: Mapping[str, float], transform=None) -> dict:
    """Non-centred study effects shared by a study's arms: sd * z, z ~ N(0, 1), with
    sd ~ LogNormal(log ``study_{kind}_sd_median``, ``study_sd_log_sd``).

    ``transform(kind, sd)``, when given, returns the transform NUTS samples ``z`` of that kind
    (``time``, ``cure``) through, or None
    (:class:`~trt_recovery.models.survival_cure.AnchoredStudyEffect`); the prior and the model are
    the same either way.
    """
    import pymc as pm

    kinds = ("time", "cure")
    sds = {kind: pm.LogNormal(f"study_{kind}_sd", np.log(priors[f"study_{kind}_sd_median"]), priors["study_sd_log_sd"])
           for kind in kinds}
    out = {}
    for kind in kinds:
        tr = transform(kind, sds[kind]) if transform is not None else None
        z = pm.Normal(f"study_{kind}_z", 0.0, 1.0, dims="study", **({"transform": tr} if tr is not None else {}))
        out[kind] = (sds[kind], z)
    return out


def declare_arm_covariates(arms: pd.DataFrame, priors: Mapping[str, float],
                           included: Sequence[Covariate]) -> tuple[dict, dict]:
    """Arm covariate values on the model scale; a missing value is latent (see :class:`Covariate`).

    Continuous: ``{variable}_pop_mean ~ N(0, covariate_pop_mean_sd)``, ``{variable}_pop_sd ~
    HalfNormal(covariate_pop_sd_scale)``, reported values are observed from that normal, missing ones
    are non-centred latent values. Fraction: missing values ~ Beta(``fraction_prior_a``,
    ``fraction_prior_b``). Returns ``{name: tensor over arms}`` (0 where not applicable) and the
    coefficients ``{name}_time ~ N(0, covariate_time_sd)``, ``{name}_cure ~ N(0, covariate_cure_sd)``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    x: dict = {}
    coefs: dict = {}
    for cov in included:
        applicable = androgen_exposed(arms) if cov.androgen_only else np.ones(len(arms), bool)
        raw = arms[cov.column].to_numpy(float)
        obs = np.where(np.isnan(raw), np.nan, cov.to_model(np.where(np.isnan(raw), 1.0, raw)))
        missing = np.isnan(obs) & applicable
        observed = ~np.isnan(obs) & applicable
        full = pt.as_tensor(np.where(observed, obs, 0.0))
        if cov.kind == "continuous":
            centre = pm.Normal(f"{cov.variable}_pop_mean", 0.0, priors["covariate_pop_mean_sd"])
            spread = pm.HalfNormal(f"{cov.variable}_pop_sd", priors["covariate_pop_sd_scale"])
            dim = f"{cov.variable}_reported_arm"  # labelled by arm: a study's observations can be found
            pm.modelcontext(None).add_coord(dim, arms.index[observed].astype(str))
            pm.Normal(f"{cov.variable}_reported", centre, spread, observed=obs[observed], dims=dim)
            if missing.any():  # non-centred: imputed values do not form a funnel with the spread
                z = pm.Normal(f"{cov.variable}_imputed_z", 0.0, 1.0, shape=int(missing.sum()))
                full = pt.set_subtensor(full[np.flatnonzero(missing)], centre + spread * z)
        else:
            if missing.any():
                lat = pm.Beta(f"{cov.variable}_imputed", priors["fraction_prior_a"], priors["fraction_prior_b"],
                              shape=int(missing.sum()))
                full = pt.set_subtensor(full[np.flatnonzero(missing)], lat)
        x[cov.name] = pm.Deterministic(cov.variable, full, dims="arm")
        coefs[cov.coefficients[0]] = pm.Normal(cov.coefficients[0], 0.0, priors["covariate_time_sd"])
        coefs[cov.coefficients[1]] = pm.Normal(cov.coefficients[1], 0.0, priors["covariate_cure_sd"])
    return x, coefs


# ------------------------------------------------------------------------------------------------
# The linear predictors (numpy or PyTensor)


def _index(values: Sequence[str], levels: Sequence[str], reference: str) -> tuple[np.ndarray, np.ndarray]:
    """Index into an effect vector over ``levels`` and a 0/1 mask that is 0 for the reference."""
    levels = list(levels)
    unknown = sorted({v for v in values if v != reference and v not in levels})
    if unknown:
        raise UnknownNameError(f"level(s) {unknown} have no effect in this model (levels: {levels})")
    idx = np.array([levels.index(v) if v in levels else 0 for v in values], dtype=int)
    mask = np.array([v != reference for v in values], dtype=float)
    return idx, mask


def threshold_effect(thresholds: Sequence[str], steps, free, free_levels: Sequence[str],
                     segments: Sequence[str], splits: Mapping | None = None):
    """Effect of each row's threshold: the ladder steps up to it, or its free effect.

    ``steps`` holds the shift of each segment (``segments`` are their labels, see
    :func:`ladder_segments`). A threshold that ends a segment sums whole segments; one inside a
    segment also needs ``splits[label]``, the within-segment weights of that segment.
    """
    ladder = list(load_schema().threshold_ladder)
    segs = segments_from_labels(segments)
    lib = _lib(steps, free) if free is not None else _lib(steps)
    free_levels = list(free_levels)
    unknown = sorted({t for t in thresholds if t not in ladder and t not in free_levels})
    if unknown:
        raise UnknownNameError(f"threshold(s) {unknown} have no effect in this model")
    cum = lib.concatenate([lib.zeros(1), lib.cumsum(steps)])
    # vectorised (one gather per part, not one graph node per row): a row at a segment's end (or
    # free, or the ladder's first level: cum[0] = 0) takes cum[base]; a row inside a segment adds
    # that segment's step times its within-segment share (shares[0] = 0 for every other row)
    n = len(thresholds)
    base, step_of, share_of = np.zeros(n, dtype=int), np.zeros(n, dtype=int), np.zeros(n, dtype=int)
    shares, share_pos = [lib.zeros(())], {}
    for i, t in enumerate(thresholds):
        if t in free_levels or t == ladder[0]:
            continue
        j = next(i_ for i_, (_, st) in enumerate(segs) if t in st)
        label, st = segs[j]
        if t == label:
            base[i] = j + 1
            continue
        if splits is None or label not in splits:
            raise UnknownNameError(f"threshold {t!r} lies inside a ladder segment: it needs that segment's split "
                           "(predictions draw it from the prior)")
        key = (label, st.index(t))
        if key not in share_pos:
            share_pos[key] = len(shares)
            shares.append(lib.sum(splits[label][: st.index(t) + 1]))
        base[i], step_of[i], share_of[i] = j, j, share_pos[key]
    result = cum[base]
    if len(shares) > 1:
        result = result + steps[step_of] * lib.stack(shares)[share_of]
    is_free = np.array([t in free_levels for t in thresholds], dtype=float)
    if free_levels and free is not None:
        free_idx = np.array([free_levels.index(t) if t in free_levels else 0 for t in thresholds], dtype=int)
        result = result + free[free_idx] * is_free
    return result


def linear_predictors(par: Mapping, rows: pd.DataFrame, levels: Mapping[str, Sequence[str]], x: Mapping,
                      thresholds: Sequence[str] | None = None, study_time=0.0, study_cure=0.0):
    """Log time scale ``mu`` and non-recovery logit ``eta`` of each row.

    Parameters
    ----------
    par : mapping
        ``time_intercept``, ``cure_intercept``; factor effect vectors (e.g. ``strategy_time``) over
        ``levels[factor]`` (reference level excluded; absent when no level has an effect);
        covariate coefficients ``{name}_time`` / ``{name}_cure``; when ``thresholds`` is given,
        ``threshold_{time,cure}_step`` (over the ladder segments ``levels["threshold_segment"]``),
        ``threshold_{time,cure}_free`` and, for thresholds inside a segment,
        ``threshold_{time,cure}_splits`` (segment label -> within-segment weights).
    rows : DataFrame
        A factor column per factor (:data:`FACTORS`).
    levels : mapping
        Level order of each factor's effect vector, ``threshold_free`` and ``threshold_segment``.
    x : mapping
        Covariate values on the model scale per row, for the covariates that have coefficients.
    thresholds : sequence of str, optional
        Each row's recovery threshold (None: the threshold is added later, per observation).
    study_time, study_cure : array-like
        Study (or new-study) effects per row.
    """
    mu = par["time_intercept"] + study_time
    eta = par["cure_intercept"] + study_cure
    for f in FACTORS:
        lv = levels.get(f.name, [])
        idx, mask = _index(rows[f.name].tolist(), lv, f.reference)
        for pname, _, predictor in f.effects:
            if pname not in par or not len(lv):
                continue
            term = par[pname][idx] * mask
            if predictor == "time":
                mu = mu + term
            else:
                eta = eta + term
    for name, value in x.items():
        mu = mu + par[f"{name}_time"] * value
        eta = eta + par[f"{name}_cure"] * value
    if thresholds is not None:
        free, segs = levels.get("threshold_free", []), levels["threshold_segment"]
        mu = mu + threshold_effect(thresholds, par["threshold_time_step"], par.get("threshold_time_free"), free, segs,
                                   par.get("threshold_time_splits"))
        eta = eta + threshold_effect(thresholds, par["threshold_cure_step"], par.get("threshold_cure_free"), free, segs,
                                     par.get("threshold_cure_splits"))
    return mu, eta


# ------------------------------------------------------------------------------------------------
# Predictions (inside the fit's model context, rebuilt with the rows to predict)

#: names of the prediction variables (average study; new study)
PREDICTION_VARS = ("profile_time_logscale", "profile_cure_logit",
                   "profile_time_logscale_new_study", "profile_cure_logit_new_study")


def prediction_block(par: dict, coords: Mapping[str, list[str]], priors: Mapping[str, float], profiles: pd.DataFrame,
                     arm_x: Mapping, included: Sequence[Covariate], study: Mapping) -> None:
    """Add the prediction variables for ``profiles`` to the current model.

    Factor levels and unordered thresholds without data get their effects from the prior here
    (variables ``<parameter>_unobserved``, absent from the posterior, so drawn from their prior by
    ``pm.sample_posterior_predictive``); a profile covariate left unset takes the population mean
    of that covariate (continuous: ``{variable}_pop_mean``; fraction: the mean over the fit's arms).
    The new study's effects are one standard-normal draw per posterior draw, shared by every
    profile (so contrasts between profiles refer to the same new study).
    """
    import pymc as pm
    import pytensor.tensor as pt

    model = pm.modelcontext(None)
    extra = prediction_coords(coords)
    for dim, lv in extra.items():
        model.add_coord(f"{dim}_pred", lv)
    full = dict(par)
    levels = {}
    for f in FACTORS:
        unobs = extra[unobserved_dim(f.name)]
        levels[f.name] = list(coords[f.name]) + unobs
        for pname, prior_key, _ in f.effects:
            parts = [par[pname]] if pname in par else []
            if unobs:
                parts.append(pm.Normal(f"{pname}_unobserved", 0.0, priors[prior_key], dims=f"{unobserved_dim(f.name)}_pred"))
            if parts:
                full[pname] = pt.concatenate(parts) if len(parts) > 1 else parts[0]
    unobs_thr = extra[unobserved_dim("threshold_free")]
    levels["threshold_free"] = list(coords["threshold_free"]) + unobs_thr
    for kind in ("time", "cure"):
        parts = [par[f"threshold_{kind}_free"]] if f"threshold_{kind}_free" in par else []
        if unobs_thr:
            parts.append(pm.Normal(f"threshold_{kind}_free_unobserved", 0.0, priors["threshold_free_sd"],
                                   dims=f"{unobserved_dim('threshold_free')}_pred"))
        if parts:
            full[f"threshold_{kind}_free"] = pt.concatenate(parts) if len(parts) > 1 else parts[0]
    levels["threshold_segment"] = list(coords["threshold_segment"])
    conc = priors["threshold_weight_concentration"]
    for kind in ("time", "cure"):
        splits = {}
        for label, steps in segments_from_labels(coords["threshold_segment"]):
            if len(steps) > 1:
                splits[label] = pm.Dirichlet(f"threshold_{kind}_split_{label}", np.full(len(steps), conc))
        full[f"threshold_{kind}_splits"] = splits
    model.add_coord("profile", [str(i) for i in range(len(profiles))])
    exposed = androgen_exposed(profiles).astype(float)
    x = {}
    for cov in included:
        raw = profiles[cov.column].to_numpy(float)
        given = ~np.isnan(raw)
        value = cov.to_model(np.where(given, raw, 1.0))
        if cov.kind == "continuous":
            average = model[f"{cov.variable}_pop_mean"]
        else:
            average = pt.mean(arm_x[cov.name])
        xv = pt.switch(pt.as_tensor(given), pt.as_tensor(value), average)
        x[cov.name] = xv * exposed if cov.androgen_only else xv
    thresholds = profiles["threshold"].tolist()
    mu, eta = linear_predictors(full, profiles, levels, x, thresholds)
    pm.Deterministic("profile_time_logscale", mu, dims="profile")
    pm.Deterministic("profile_cure_logit", eta, dims="profile")
    from trt_recovery.models.base import new_study

    new_time, _ = new_study(study["time"][0], "new_study_time_z")
    new_cure, _ = new_study(study["cure"][0], "new_study_cure_z")
    pm.Deterministic("profile_time_logscale_new_study", mu + new_time, dims="profile")
    pm.Deterministic("profile_cure_logit_new_study", eta + new_cure, dims="profile")
