"""Figures and tables of a survival-model fit: curves, main table, posterior predictive check, prior.

All functions take a :class:`trt_recovery.posterior.Fit` (never refit) and compute through
:mod:`trt_recovery.survival.predict` (the model's graph). Colour-blind-safe palette, axes
labelled with units, strategy names spelled out.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr

from trt_recovery.certainty import load_rules, rate
from trt_recovery.labels import OKABE_ITO, population_label, strategy_colour, strategy_label, threshold_label
from trt_recovery.schema import load_schema
from trt_recovery.summaries import interval, interval_over
from trt_recovery.survival import likelihood as lik
from trt_recovery.survival import predict as P
from trt_recovery.survival.families import get_family

TIMES = np.linspace(0.1, 36, 80)


def strategies_with_evidence(fit, population: str | None = None) -> list[str]:
    """Strategies with at least one used row (in ``population`` when given), in vocabulary order."""
    used = fit.used
    if population is not None and len(used):
        used = used[used["population"] == population]
    present = set(used["strategy"]) if len(used) else set()
    return [s for s in load_schema().terms("strategy") if s in present]


def main_table(fit, population: str = "trt", threshold: str = "any", t_check: float = 12.0,
               seed: int = 0) -> pd.DataFrame:
    """Median time, P(recovered by t_check) and P(never) per strategy (average study; 95% intervals).

    With each: how far the data moved it from its prior (contraction, power-scaling prior and
    likelihood sensitivity, and the plain flag of :func:`trt_recovery.summaries.evidence_flag`).
    The unsuffixed ``evidence_flag`` is that of P(recovered by t_check); ``*_p_never`` and
    ``*_median`` those of the other two.
    """
    strategies = load_schema().terms("strategy")
    profiles = [P.Profile(strategy=s, population=population, threshold=threshold) for s in strategies]
    pred = P.Predictions(fit, profiles, seed=seed)
    prior = P.Predictions(fit, profiles, seed=seed, group="prior") if "prior" in fit.tree.children else None
    med_all = pred.median_time()
    r_all = pred.recovered_by([t_check]).isel(time=0)
    rn_all = pred.recovered_by([t_check], new_study=True).isel(time=0)
    never_all = pred.p_never()
    rows = []
    for i, s in enumerate(strategies):
        med = interval(med_all.isel(profile=i))
        r = interval(r_all.isel(profile=i))
        rn = interval(rn_all.isel(profile=i))
        ev = P.evidence(fit, s, population)
        rows.append(
            {
                "strategy": s,
                "strategy_label": strategy_label(s),
                "direct_evidence": ev["rows"] > 0,
                "studies": ev["studies"],
                "men": ev["men"],
                "rows": ev["rows"],
                "median_months": med[0],
                "median_lower95": med[1],
                "median_upper95": med[2],
                "p_median_not_reached": float(np.mean(~np.isfinite(med_all.isel(profile=i).values))),
                f"p_recovered_{t_check:g}m": r[0],
                f"p_recovered_{t_check:g}m_lower95": r[1],
                f"p_recovered_{t_check:g}m_upper95": r[2],
                f"p_recovered_{t_check:g}m_new_study_lower95": rn[1],
                f"p_recovered_{t_check:g}m_new_study_upper95": rn[2],
                "p_never": interval(never_all.isel(profile=i))[0],
            }
        )
    if prior is not None:  # how far the data moved each headline number from its prior
        pairs = {f"p_recovered_{t_check:g}m": (prior.recovered_by([t_check]).isel(time=0), r_all),
                 "p_never": (prior.p_never(), never_all),
                 "median": (np.log(prior.median_time()), np.log(med_all))}  # log: the scale it is summarised on
        quantities = {f"{key}|{i}": (pri.isel(profile=i), post.isel(profile=i), s)
                      for key, (pri, post) in pairs.items() for i, s in enumerate(strategies)}
        for name, flags in P.evidence_flags(fit, quantities).items():
            key, i = name.split("|")[0], int(name.split("|")[1])
            main = key.startswith("p_recovered")  # P(recovered by t_check) carries the table's main flag
            rows[i].update({(k if main and not k.endswith("_sd") else f"{k}_{key}"): v for k, v in flags.items()})
    rules = load_rules()
    if population in rules.target_populations:  # certainty of P(recovered by t_check), GRADE-style
        used = fit.used
        for i, s in enumerate(strategies):
            sub = used[used["strategy"] == s] if len(used) else used
            if sub.empty:
                rows[i]["certainty"] = "no evidence"
                continue
            r, rn = interval(r_all.isel(profile=i)), interval(rn_all.isel(profile=i))
            flag = rows[i].get("evidence_flag", "not assessable")
            rows[i]["certainty"] = rate(sub, population, r, (rn[1], rn[2]), flag, "probability", rules)["certainty"]
    return pd.DataFrame(rows)


def observed_points(fit, strategy: str, population: str, threshold: str) -> list[tuple[float, float]]:
    """Observed points on the cumulative recovery curve of one strategy, population and threshold,
    as reported: r of n by t (counts from time zero, and counts whose denominator is not reported
    but whose time is), and medians over all men (half the men recovered by the median)."""
    arms = fit.arms
    keep = set(arms.index[(arms["strategy"] == strategy) & (arms["population"] == population)])
    out: list[tuple[float, float]] = []
    for name, tab in fit.terms.items():
        if not len(tab):
            continue
        tab = tab[tab["arm_id"].isin(keep) & (tab["threshold"] == threshold)]
        for r in tab.itertuples():
            if name == "interval_count" and r.t0 == 0 and r.at_risk > 0:
                out.append((float(r.t1), r.events / r.at_risk))
            elif name == "marginal_count" and not pd.isna(r.time):
                out.append((float(r.time), float(r.proportion)))
            elif name in ("quantile_time", "quantile_unknown_n") and r.over_all:
                out.append((float(r.value), float(r.p)))
    return out


def curves_figure(fit, population: str = "trt", threshold: str = "any", seed: int = 1) -> plt.Figure:
    """P(recovered by t) per strategy with direct evidence; 95% bands (average study, new study dotted);
    the observed points of arms of this population and threshold (:func:`observed_points`).

    Each legend entry says what the curve rests on (studies and men in this population) and the
    evidence flag of its P(recovered by 12 months) (:func:`trt_recovery.summaries.evidence_flag`).
    """
    strategies = strategies_with_evidence(fit) or ["none"]
    profiles = [P.Profile(strategy=s, population=population, threshold=threshold) for s in strategies]
    pred = P.Predictions(fit, profiles, seed=seed)
    avg = pred.recovered_by(TIMES)
    new = pred.recovered_by(TIMES, new_study=True)
    r12 = pred.recovered_by([12.0]).isel(time=0)
    flags = {}
    if "prior" in fit.tree.children:
        prior12 = P.Predictions(fit, profiles, seed=seed, group="prior").recovered_by([12.0]).isel(time=0)
        cols = P.evidence_flags(fit, {s: (prior12.isel(profile=i), r12.isel(profile=i), s)
                                      for i, s in enumerate(strategies)})
        flags = {s: c["evidence_flag"] for s, c in cols.items()}
    ncol = min(3, len(strategies))
    nrow = int(np.ceil(len(strategies) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol + 0.6, 2.9 * nrow + 1.0), squeeze=False,
                             sharex=True, sharey=True)
    ref = avg.isel(profile=0).median(dim=("chain", "draw")).values
    for i, s in enumerate(strategies):
        ax = axes.ravel()[i]
        c = strategy_colour(s)
        med, lo, hi = interval_over(avg.isel(profile=i))
        _, lo_new, hi_new = interval_over(new.isel(profile=i))
        ev = P.evidence(fit, s, population)
        rests = (f"{ev['studies']} stud{'y' if ev['studies'] == 1 else 'ies'}, {ev['men']} men"
                 if ev["rows"] else "no data in this population")
        if i > 0:  # the first panel's median, for comparison
            ax.plot(TIMES, ref, color="0.55", lw=1, ls="--", label=f"{strategy_label(strategies[0])} (median)")
        ax.fill_between(TIMES, lo, hi, color=c, alpha=0.25, lw=0, label="95% interval (average study)")
        ax.plot(TIMES, med, color=c, lw=2, label="median")
        ax.plot(TIMES, lo_new, color=c, lw=0.8, ls=":", label="95% range for a new study")
        ax.plot(TIMES, hi_new, color=c, lw=0.8, ls=":")
        pts = [(t, y) for t, y in observed_points(fit, s, population, threshold) if t <= max(TIMES)]
        if pts:
            ax.plot(*zip(*pts, strict=True), "o", mfc="white", mec="black", ms=4.5, mew=1,
                    label="observed arm (as reported)")
        ax.set_title(f"{strategy_label(s)}\n{rests}" + (f"; {flags[s]}" if s in flags else ""), fontsize=8)
        ax.set_ylim(0, 1)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(strategies):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("P(recovered by t)", fontsize=8)
    for j in range(ncol):  # the lowest visible panel of each column carries the time axis label
        visible = [r for r in range(nrow) if r * ncol + j < len(strategies)]
        axes[visible[-1], j].set_xlabel("Months since time zero", fontsize=8)
        axes[visible[-1], j].tick_params(labelbottom=True)
    handles, labels = {}, []
    for a in axes.ravel()[: len(strategies)]:  # every kind of line and marker once
        for h, lab in zip(*a.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    labels = list(handles)
    handles = list(handles.values())
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=7, frameon=False)
    title = fit.config_dict.get("title") or fit.analysis
    fig.suptitle(f"{title}\n{population_label(population)}; recovery = {threshold_label(threshold)}", fontsize=9)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def observation_predictors(fit, group: str = "posterior") -> dict[str, xr.Dataset]:
    """Per-observation ``mu`` and ``eta`` of every likelihood term, through the model's graph."""
    from trt_recovery.models.survival_cure import OBSERVATIONS

    names = [f"{t}_{k}" for t, tab in fit.terms.items() if len(tab) for k in ("time_logscale", "cure_logit")]
    if not names:
        return {}
    ds = fit.predictions(names, predict=OBSERVATIONS, group=group)
    return {t: ds[[f"{t}_time_logscale", f"{t}_cure_logit"]] for t, tab in fit.terms.items() if len(tab)}


def ppc_table(fit) -> pd.DataFrame:
    """Observed summary vs posterior predicted summary, one row per summary observation.

    Counts: the share recovering in the interval; quantiles (medians, quartiles): the model's
    quantile; means among recoverers: the model's truncated mean; "median not reached by t": the
    model's P(recovered by t), which should lie below one half; a mean over all men: the model's
    restricted mean up to its horizon (the middle of the horizon window, on the log scale, when only
    the shortest follow-up is known); a count whose n or time is not reported: the model's share
    recovered by its time (the middle of the follow-up window when the time is not reported).
    Individual times are summarised per arm as the share recovered by the arm's last time (events / men).
    """
    fam = get_family(fit.spec.family)
    k = fit.posterior[fam.shape_variable].values.reshape(-1)
    preds = observation_predictors(fit)
    rows = []

    def add(r, term, what, obs, pred):
        med, lo, hi = interval(pred[np.isfinite(pred)] if np.isfinite(pred).any() else pred)
        rows.append({"outcome_id": r["outcome_id"], "arm_id": r["arm_id"], "threshold": r["threshold"],
                     "term": term, "summary": what, "observed": obs, "predicted_median": med,
                     "predicted_lower95": lo, "predicted_upper95": hi, "inside_95": bool(lo <= obs <= hi)})

    for term, tab in fit.terms.items():
        if not len(tab):
            continue
        mu_all = preds[term][f"{term}_time_logscale"].values.reshape(-1, len(tab))
        eta_all = preds[term][f"{term}_cure_logit"].values.reshape(-1, len(tab))
        if term == "individual_time":
            for arm, g in tab.groupby("arm_id", sort=True):
                j = g.index.to_numpy()
                t_end = float(g["time"].max())
                mu, eta = mu_all[:, j[0]], eta_all[:, j[0]]
                pred = np.exp(fam.log_cdf(t_end, mu, k)) / (1 + np.exp(eta))
                add(g.iloc[0], term, f"recovered by {t_end:g} months (individual times)", g["event"].mean(), pred)
            continue
        for j, r in tab.iterrows():
            mu, eta = mu_all[:, j], eta_all[:, j]
            p_rec = 1 / (1 + np.exp(eta))
            if term == "interval_count":
                def R(t):  # noqa: E306 - cumulative recovery curve
                    return p_rec * np.exp(fam.log_cdf(max(t, 1e-9), mu, k)) if t > 0 else 0.0
                pred = (R(r["t1"]) - R(r["t0"])) / (1 - R(r["t0"]))
                add(r, term, f"recovered in ({r['t0']:g}, {r['t1']:g}] months", r["events"] / r["at_risk"], pred)
            elif term in ("quantile_time", "quantile_unknown_n"):
                if r["over_all"]:
                    ok = p_rec > r["p"]
                    pred = np.full(mu.shape, np.inf)
                    pred[ok] = fam.quantile(r["p"] / p_rec[ok], mu[ok], k[ok])
                else:
                    pred = fam.quantile(r["p"], mu, k)
                add(r, term, f"q{r['p']:g} time, {'all men' if r['over_all'] else 'recoverers'} (months"
                    + (", n not reported)" if term == "quantile_unknown_n" else ")"), r["value"], pred)
            elif term == "mean_time":
                pred = fam.truncated_moment(1, r["tau"], mu, k)
                add(r, term, "mean time among recoverers (months)", r["value"], pred)
            elif term == "restricted_mean":
                tau = float(r["tau"])
                if r["horizon_is_minimum"]:
                    tau = float(np.sqrt(tau * max(tau, fit.priors["unknown_followup_max_months"])))
                what = (f"mean over all men up to {tau:.1f} months"
                        + (" (middle of the horizon window, months)" if r["horizon_is_minimum"] else " (months)"))
                pred = lik.restricted_mean(tau, mu, k, -np.logaddexp(0, -eta), -np.logaddexp(0, eta), fam)
                add(r, term, what, r["value"], pred)
            elif term == "not_reached":
                pred = p_rec * np.exp(fam.log_cdf(r["t"], mu, k))
                add(r, term, f"recovered by {r['t']:g} months (median not reached: observed below 0.5)", 0.5, pred)
            elif term == "marginal_count":
                if pd.isna(r["time"]):
                    t_show = float(np.sqrt(fit.priors["unknown_followup_min_months"] * fit.priors["unknown_followup_max_months"]))
                    what = f"recovered by an unreported time (shown at {t_show:.1f} months, middle of the window)"
                else:
                    t_show = float(r["time"])
                    what = f"recovered by {t_show:g} months (n not reported)"
                pred = p_rec * np.exp(fam.log_cdf(t_show, mu, k))
                add(r, term, what, r["proportion"], pred)
    return pd.DataFrame(rows)


def ppc_figure(ppc: pd.DataFrame) -> plt.Figure:
    count_terms = ["interval_count", "individual_time", "not_reached", "marginal_count"]
    counts = ppc[ppc.term.isin(count_terms)]
    times = ppc[~ppc.term.isin(count_terms)]
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.4 * max(len(counts), len(times), 4) + 1.5))
    for ax, kind, xlabel in (
        (axes[0], counts, "Proportion recovered"),
        (axes[1], times, "Time (months)"),
    ):
        for y, r in enumerate(kind.itertuples()):
            hi = r.predicted_upper95 if np.isfinite(r.predicted_upper95) else np.nan
            ax.plot([r.predicted_lower95, hi], [y, y], color=OKABE_ITO[4], lw=2)
            ax.plot(r.predicted_median, y, "o", color=OKABE_ITO[4], ms=4)
            ax.plot(r.observed, y, "x", color=OKABE_ITO[5], ms=8, mew=2)
        ax.set_yticks(range(len(kind)), [f"{r.arm_id} [{r.threshold}] {r.summary}" for r in kind.itertuples()],
                      fontsize=7)
        ax.set_xlabel(xlabel)
    axes[0].set_title("Counts: observed (x) vs predicted 95%")
    axes[1].set_title("Times: observed (x) vs predicted 95%")
    fig.tight_layout()
    return fig


def prior_predictive_figure(fit) -> plt.Figure:
    """Implied median time and P(recovered by 12 months) for the reference profile under the prior."""
    pred = P.Predictions(fit, [P.Profile(strategy="none", population="trt", threshold="any")], group="prior")
    med = pred.median_time().values.reshape(-1)
    r12 = pred.recovered_by([12.0]).values.reshape(-1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    finite = med[np.isfinite(med) & (med < 1e4)]
    axes[0].hist(np.log10(finite), bins=50, color=OKABE_ITO[1])
    ticks = [7 / 30.4, 1, 3, 12, 36, 120]
    axes[0].set_xticks(np.log10(ticks), ["1 wk", "1 mo", "3 mo", "1 yr", "3 yr", "10 yr"], fontsize=8)
    axes[0].set_xlabel("Prior median time to recovery (log scale)")
    axes[0].set_title(f"Prior predictive: {np.mean(~np.isfinite(med)):.0%} of draws never reach 50%")
    axes[1].hist(r12, bins=40, color=OKABE_ITO[2])
    axes[1].set_xlabel("Prior P(recovered by 12 months)")
    for ax in axes:
        ax.set_ylabel("Draws")
    fig.tight_layout()
    return fig


def headline(fit) -> dict[str, np.ndarray]:
    """P(recovered by 12 months), P(never) and log median time (TRT, any sperm, average study)
    for every strategy with direct evidence in the fit: the numbers ``make verify`` checks."""
    strategies = strategies_with_evidence(fit)
    if not strategies:
        return {}
    pred = P.Predictions(fit, [P.Profile(strategy=s, population="trt", threshold="any") for s in strategies])
    r12 = pred.recovered_by([12.0]).isel(time=0)
    never = pred.p_never()
    med = pred.median_time()
    out = {}
    for i, s in enumerate(strategies):
        out[f"p_recovered_12m[{s}]"] = r12.isel(profile=i).values.reshape(-1)
        out[f"p_never[{s}]"] = never.isel(profile=i).values.reshape(-1)
        m = med.isel(profile=i).values.reshape(-1)
        out[f"log_median_months[{s}]"] = np.log(np.where(np.isfinite(m), m, 1e4))
    return out


def contrasts_table(fit, t: float = 12.0) -> pd.DataFrame:
    rows = []
    for s in strategies_with_evidence(fit):
        if s == P.REFERENCE_STRATEGY:
            continue
        c = P.contrast_vs_none(fit, P.Profile(strategy=s), t)
        rows.append({"strategy": s, **{f"diff_{t:g}m_{k}": v for k, v in c["diff_recovered_by_t"].items()},
                     "p_better_than_none": c["p_better_than_none"], "note": c["note"]})
    return pd.DataFrame(rows)


def report_fit(fit, name: str) -> list:
    """Every table and figure of a survival fit."""
    from trt_recovery.report import save_figure
    from trt_recovery.tables import write_table

    out = write_table(main_table(fit), f"{name}_main_table", float_format="{:.3g}")
    out += write_table(contrasts_table(fit), f"{name}_contrasts_vs_none")
    out += save_figure(curves_figure(fit), f"{name}_curves")
    ppc = ppc_table(fit)
    out += write_table(ppc, f"{name}_ppc")
    out += save_figure(ppc_figure(ppc), f"{name}_ppc")
    out += save_figure(prior_predictive_figure(fit), f"{name}_prior_predictive")
    out += write_table(fit.exclusions, f"{name}_exclusions")
    out += write_table(assumptions_table(fit), f"{name}_assumptions")
    return out


def assumptions_table(fit) -> pd.DataFrame:
    """Rows that enter only under a stated assumption (an unreported time, denominator or number of
    men behind a median, an imputed SD), with the assumption."""
    rows = []
    for name in ("marginal_count", "quantile_unknown_n", "restricted_mean"):
        t = fit.terms.get(name)
        if t is not None and len(t):
            for r in t[t["assumption"].astype(bool)].itertuples():
                rows.append({"outcome_id": r.outcome_id, "arm_id": r.arm_id, "assumption": r.assumption})
    t = fit.terms.get("mean_time")
    if t is not None and len(t) and "sd_source" in t:
        for r in t[t["sd_source"] != "reported"].itertuples():
            rows.append({"outcome_id": r.outcome_id, "arm_id": r.arm_id, "assumption": f"SD not reported: {r.sd_source}"})
    return pd.DataFrame(rows, columns=["outcome_id", "arm_id", "assumption"])
