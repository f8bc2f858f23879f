"""Figures and tables from cached posteriors (never refits). Each model's spec names its reporter."""

from __future__ import annotations

from pathlib import Path

from trt_recovery import paths
from trt_recovery.posterior import check_name, Fit, load_fit


def fit_summary(fit: Fit) -> str:
    """One line a notebook prints under its title: what was fitted, how, and whether it converged."""
    return fit.summary_line()


def save_figure(fig, stem: str, directory: Path | None = None) -> list[Path]:
    """Save a figure as PDF and PNG named ``stem`` (each written to a temporary file, then renamed)."""
    import matplotlib.pyplot as plt

    directory = directory or paths.FIGURES_DIR
    directory.mkdir(parents=True, exist_ok=True)
    out = [directory / f"{stem}.pdf", directory / f"{stem}.png"]
    for target, kwargs in ((out[0], {"metadata": {"CreationDate": None}}), (out[1], {"dpi": 150})):
        tmp = target.with_name(f".{target.name}.tmp")
        fig.savefig(tmp, format=target.suffix[1:], **kwargs)
        tmp.replace(target)
    plt.close(fig)
    return out


#: how many parameter elements the rank figure shows (those with the highest R-hat)
RANK_PANELS = 12


def parameter_summary(fit: Fit):
    """A brms-style summary of the model's parameters: every variable with a prior of its own (the
    ``log_prior`` group: population-level effects, between-study SDs, threshold shifts; not the
    standardised study effects), with mean, SD, 95% equal-tailed interval, R-hat, bulk and tail ESS
    and Monte Carlo errors (arviz-stats)."""
    import arviz_stats as azs

    names = list(fit.tree["log_prior"].data_vars) if "log_prior" in fit.tree.children else list(fit.posterior.data_vars)
    s = azs.summary(fit.tree, var_names=names, ci_prob=0.95, ci_kind="eti", round_to="none")
    out = s.reset_index().rename(columns={"index": "parameter", "mean": "estimate", "sd": "est_error",
                                          "eti95_lb": "lower95", "eti95_ub": "upper95", "r_hat": "rhat"})
    out["converged"] = (out["rhat"] <= fit.config_dict.get("checks", {}).get("rhat_max", 1.01)) & (
        out["ess_bulk"] >= fit.config_dict.get("checks", {}).get("ess_bulk_min", 400))
    return out


def rank_figure(fit: Fit, summary=None):
    """Rank plots (fractional-rank ECDF differences per chain, arviz-plots) of the parameter
    elements with the highest R-hat: chains that mix well stay inside the envelope."""
    import arviz_plots as azp
    import matplotlib.pyplot as plt
    import xarray as xr

    summary = parameter_summary(fit) if summary is None else summary
    worst = summary.sort_values("rhat", ascending=False).head(RANK_PANELS)["parameter"].tolist()
    post = fit.posterior
    ds = {}
    for label in worst:
        var, _, rest = label.partition("[")
        da = post[var]
        if rest:
            levels = rest.rstrip("]").split(",")
            dims = [d for d in da.dims if d not in ("chain", "draw")]
            da = da.sel(dict(zip(dims, levels, strict=True)))
        ds[label] = da.drop_vars([c for c in da.coords if c not in ("chain", "draw")])
    pc = azp.plot_rank(xr.DataTree.from_dict({"posterior": xr.Dataset(ds)}), backend="matplotlib")
    fig = pc.viz["chart"].item() if hasattr(pc, "viz") and "chart" in pc.viz else plt.gcf()
    rows = -(-len(worst) // 4)
    fig.set_size_inches(13, 2.9 * rows + 0.8)
    fig.suptitle(f"Rank plots of the {len(worst)} parameters with the highest R-hat ({fit.analysis}): "
                 "each chain's rank ECDF difference should stay near 0", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.96), h_pad=2.5)
    return fig


def report(name: str) -> list[Path]:
    """Write every figure and table of analysis ``name`` from its cached posterior, plus the
    parameter summary and rank plots every fit gets."""
    from trt_recovery.tables import write_table

    fit = load_fit(name)
    # outputs are named after the analysis, never after a path given on the command line
    stem = check_name(fit.analysis if str(name).endswith(".nc") else name)
    out = fit.spec.reporter(fit, stem)
    summary = parameter_summary(fit)
    out += write_table(summary, f"{stem}_parameters", float_format="{:.3g}")
    out += save_figure(rank_figure(fit, summary), f"{stem}_rank")
    return out
