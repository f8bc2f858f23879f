"""Figures and tables from cached posteriors (never refits). One reporter per model name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from trt_recovery import paths, success
from trt_recovery.fitting import load_posterior
from trt_recovery.tables import write_table


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
    out += write_table(pd.DataFrame(meta["exclusions"]), f"{name}_exclusions")
    out += save_figure(success.forest_plot(observed, pooled), f"{name}_forest")
    return out


REPORTERS: dict[str, Callable[[str], list[Path]]] = {"binomial_success": _report_success}


def report(name: str) -> list[Path]:
    """Write every figure and table of analysis ``name`` from its cached posterior."""
    _, meta = load_posterior(name)
    try:
        reporter = REPORTERS[meta["model"]]
    except KeyError:
        raise KeyError(f"no reporter for model {meta['model']!r}") from None
    return reporter(name)
