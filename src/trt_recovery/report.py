"""Figures and tables from cached posteriors (never refits). One reporter per model name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import xarray as xr

from trt_recovery import paths, success
from trt_recovery.fitting import load_posterior
from trt_recovery.tables import write_table


def fit_summary(meta: dict) -> str:
    """One line a notebook prints under its title: what was fitted, how, and whether it converged."""
    conv = meta["convergence"]
    return (
        f"model {meta['model']}, seed {meta['seed']}, backend {meta['sampler']['backend']}, "
        f"data hash {meta['data_hash'][:12]}; R-hat max {conv['rhat_max']:.3f}, min bulk ESS "
        f"{conv['ess_bulk_min']:.0f}, divergences {conv['divergences']} "
        f"({'checks passed' if conv['passed'] else 'CHECKS FAILED'}); "
        f"{len(meta['used_rows'])} rows used, {len(meta['exclusions'])} excluded"
    )


def save_figure(fig, stem: str, directory: Path | None = None) -> list[Path]:
    """Save a figure as PDF and PNG named ``stem``."""
    import matplotlib.pyplot as plt

    directory = directory or paths.FIGURES_DIR
    directory.mkdir(parents=True, exist_ok=True)
    out = [directory / f"{stem}.pdf", directory / f"{stem}.png"]
    fig.savefig(out[0], metadata={"CreationDate": None})
    fig.savefig(out[1], dpi=150)
    plt.close(fig)
    return out


def _report_success(name: str) -> list[Path]:
    dt, meta = load_posterior(name)
    used = pd.DataFrame(meta["used_rows"])
    observed = success.observed_rates(used)
    pooled = success.pooled_table(dt, used)
    out = write_table(pooled, f"{name}_pooled")
    out += write_table(observed, f"{name}_observed")
    out += write_table(success.population_shift_table(dt), f"{name}_population_shift")
    out += write_table(pd.DataFrame(meta["exclusions"]), f"{name}_exclusions")
    out += save_figure(success.forest_plot(observed, pooled), f"{name}_forest")
    return out


def _report_concentration(name: str) -> list[Path]:
    from trt_recovery import concentration as C

    dt, meta = load_posterior(name)
    used = pd.DataFrame(meta["used_rows"])
    observed = C.observed_table(used)
    pooled = C.pooled_table(dt, used)
    out = write_table(pooled, f"{name}_pooled", float_format="{:.3g}")
    out += write_table(observed, f"{name}_observed", float_format="{:.3g}")
    out += write_table(C.spread_table(dt), f"{name}_spread", float_format="{:.3g}")
    out += write_table(pd.DataFrame(meta["exclusions"]), f"{name}_exclusions")
    out += save_figure(C.forest_plot(observed, pooled), f"{name}_forest")
    return out


def _report_survival(name: str) -> list[Path]:
    from trt_recovery.survival import predict as P
    from trt_recovery.survival import report as S

    dt, meta = load_posterior(name)
    out = write_table(S.main_table(dt, meta), f"{name}_main_table", float_format="{:.3g}")
    contrasts = []
    for s in S.strategies_with_evidence(meta):
        if s == "none":
            continue
        c = P.contrast_vs_none(dt, meta, P.Profile(strategy=s), 12.0)
        contrasts.append({"strategy": s, **{f"diff_12m_{k}": v for k, v in c["diff_recovered_by_t"].items()},
                          "p_better_than_none": c["p_better_than_none"], "note": c["note"]})
    out += write_table(pd.DataFrame(contrasts), f"{name}_contrasts_vs_none")
    out += save_figure(S.curves_figure(dt, meta), f"{name}_curves")
    ppc = S.ppc_table(dt, meta)
    out += write_table(ppc, f"{name}_ppc")
    out += save_figure(S.ppc_figure(ppc), f"{name}_ppc")
    prior = xr.DataTree.from_dict({"posterior": dt["prior"].to_dataset()})
    out += save_figure(S.prior_predictive_figure(prior, meta), f"{name}_prior_predictive")
    out += write_table(pd.DataFrame(meta["exclusions"]), f"{name}_exclusions")
    return out


REPORTERS: dict[str, Callable[[str], list[Path]]] = {
    "binomial_success": _report_success,
    "lognormal_concentration": _report_concentration,
    **{f"survival_cure_{f}": _report_survival for f in ("weibull", "lognormal", "loglogistic")},
}


def report(name: str) -> list[Path]:
    """Write every figure and table of analysis ``name`` from its cached posterior."""
    _, meta = load_posterior(name)
    try:
        reporter = REPORTERS[meta["model"]]
    except KeyError:
        raise KeyError(f"no reporter for model {meta['model']!r}") from None
    return reporter(name)
