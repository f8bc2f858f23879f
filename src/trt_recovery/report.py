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


def report(name: str) -> list[Path]:
    """Write every figure and table of analysis ``name`` from its cached posterior."""
    fit = load_fit(name)
    # outputs are named after the analysis, never after a path given on the command line
    stem = check_name(fit.analysis if str(name).endswith(".nc") else name)
    return fit.spec.reporter(fit, stem)
