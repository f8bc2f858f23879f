"""Rows and colours of the forest plots (observed arms grouped under their pooled cell)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from trt_recovery.labels import population_label, strategy_colour, strategy_label

Row = tuple[str, str, dict[str, Any]]


def cell_rows(observed: pd.DataFrame, pooled: pd.DataFrame, arm_label: Callable[[Any], str],
              pooled_prefix: str) -> tuple[list[Row], dict[tuple[str, str], str]]:
    """For each strategy x population cell of ``pooled``: its observed arms, then the pooled row.

    Returns the rows as ``(kind, label, values)`` with kind ``"arm"`` or ``"pooled"`` (``values``
    carries ``cell``), top to bottom, and the colour of each cell: its strategy's colour, the same
    in every figure (:func:`trt_recovery.labels.strategy_colour`).
    """
    cells = list(zip(pooled["strategy"], pooled["population"], strict=True))
    colours = {c: strategy_colour(c[0]) for c in cells}
    rows: list[Row] = []
    for s, p in cells:
        for r in observed[(observed["strategy"] == s) & (observed["population"] == p)].itertuples():
            rows.append(("arm", arm_label(r), {**r._asdict(), "cell": (s, p)}))
        pr = pooled[(pooled["strategy"] == s) & (pooled["population"] == p)].iloc[0].to_dict()
        rows.append(("pooled", f"{pooled_prefix}: {strategy_label(s)}\n{population_label(p)}", {**pr, "cell": (s, p)}))
    return rows, colours


def cell_evidence(strategy: str, population: str, arms: pd.DataFrame, men_column: str) -> dict[str, Any]:
    """Leading columns of a pooled table row: the cell, its labels, and its studies, arms and men."""
    return {
        "strategy": strategy,
        "strategy_label": strategy_label(strategy),
        "population": population,
        "population_label": population_label(population),
        "studies": arms["study_id"].nunique(),
        "arms": len(arms),
        "men": int(arms[men_column].sum()),
    }


def follow_up(time_months: float) -> str:
    return f"{time_months:g} mo" if not pd.isna(time_months) else "end of follow-up"
