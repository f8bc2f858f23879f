"""Evidence map (strategy x population), BibTeX references, and the derived data outputs.

Men are counted once per cell: over top-level arms, plus subgroup arms whose parent arm falls in
another strategy x population cell (an arm's subgroups otherwise hold the same men). Studies that
duplicate another report are left out. Empty cells are gaps and are shown as gaps.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from trt_recovery import paths
from trt_recovery.harmonise import Harmonised, harmonise
from trt_recovery.labels import population_label, strategy_label
from trt_recovery.schema import load_schema
from trt_recovery.tables import spreadsheet_safe, write_table
from trt_recovery.validate import Dataset


def modelled_rows(ds: Dataset, analyses: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """The rows each main analysis's model uses (prepared from the data, no fitting): what the
    evidence map sets beside what exists."""
    from trt_recovery.config import main_analyses
    from trt_recovery.stamps import used_rows

    return used_rows(analyses if analyses is not None else main_analyses(), dataset=ds)


def evidence_map(ds: Dataset, modelled: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """One row per strategy x population cell of the vocabulary (gaps included).

    ``outcome_rows`` counts every row that exists; with ``modelled`` (:func:`modelled_rows`),
    ``rows_in_<analysis>`` counts the rows each main analysis's model actually uses, so the map
    never suggests more evidence than the models see.
    """
    schema = load_schema()
    studies = ds.studies[ds.studies["duplicate_of"].isna()]
    arms = ds.arms.merge(studies[["study_id", "population", "design"]], on="study_id", how="inner")
    # men are counted once per cell: top-level arms, plus subgroups whose parent arm sits in another cell
    cell = arms.set_index("arm_id")[["strategy", "population"]].apply(tuple, axis=1)
    parent_cell = arms["parent_arm_id"].map(cell)
    own_cell = arms["arm_id"].map(cell)
    top = arms[arms["parent_arm_id"].isna() | (parent_cell != own_cell)]
    kinds = ds.outcomes.merge(arms[["arm_id", "strategy", "population"]], on="arm_id", how="inner")
    rows = []
    for s in schema.terms("strategy"):
        for p in schema.terms("population"):
            a = arms[(arms["strategy"] == s) & (arms["population"] == p)]
            t = top[(top["strategy"] == s) & (top["population"] == p)]
            k = kinds[(kinds["strategy"] == s) & (kinds["population"] == p)]
            rows.append(
                {
                    "strategy": s,
                    "population": p,
                    "studies": a["study_id"].nunique(),
                    # case reports apart from cohorts and trials: one man described is not a cohort
                    "case_report_studies": a.loc[a["design"] == "case_report", "study_id"].nunique(),
                    "arms": len(a),
                    "men": int(t["n"].sum()) if len(t) else 0,
                    "outcome_rows": len(k),
                    "outcome_kinds": ", ".join(sorted(k["outcome"].unique())),
                    **{f"rows_in_{name}": int(((u["strategy"] == s) & (u["population"] == p)).sum())
                       for name, u in (modelled or {}).items()},
                }
            )
    return pd.DataFrame(rows)


def evidence_map_figure(emap: pd.DataFrame) -> plt.Figure:
    """Heat map of studies (and men) per strategy x population; gaps are left blank."""
    strategies = list(dict.fromkeys(emap["strategy"]))
    populations = list(dict.fromkeys(emap["population"]))
    studies = emap.pivot(index="strategy", columns="population", values="studies").loc[strategies, populations]
    men = emap.pivot(index="strategy", columns="population", values="men").loc[strategies, populations]
    cases = (emap.pivot(index="strategy", columns="population", values="case_report_studies")
             .loc[strategies, populations]) if "case_report_studies" in emap else None
    used_cols = [c for c in emap.columns if c.startswith("rows_in_")]
    used = (emap.assign(_used=emap[used_cols].sum(axis=1)).pivot(index="strategy", columns="population", values="_used")
            .loc[strategies, populations]) if used_cols else None
    fig, ax = plt.subplots(figsize=(9.5, 0.55 * len(strategies) + 1.8))
    masked = np.ma.masked_equal(studies.to_numpy(dtype=float), 0)
    im = ax.imshow(masked, cmap="viridis", aspect="auto", vmin=0)
    for i in range(len(strategies)):
        for j in range(len(populations)):
            v = int(studies.iat[i, j])
            txt = f"{v} ({int(men.iat[i, j])} men)" if v else "gap"
            if v and cases is not None and int(cases.iat[i, j]):
                txt += f"\nincl. {int(cases.iat[i, j])} case report{'s' if int(cases.iat[i, j]) > 1 else ''}"
            if v and used is not None:
                txt += f"\n{int(used.iat[i, j])} modelled"
            light = v > 0.6 * float(np.nanmax(masked.filled(0))) if v else False  # yellow end of viridis
            ax.text(j, i, txt, ha="center", va="center", fontsize=7, color=("black" if light else "white") if v else "0.55")
    ax.set_xticks(range(len(populations)), [population_label(p) for p in populations], rotation=20, ha="right")
    ax.set_yticks(range(len(strategies)), [strategy_label(s) for s in strategies])
    ax.set_title("Evidence map: studies (men) per strategy and population"
                 + ("\n'modelled': outcome rows the main analyses use" if used is not None else ""), fontsize=10)
    fig.colorbar(im, ax=ax, label="studies")
    fig.tight_layout()
    return fig


def bibtex(ds: Dataset) -> str:
    """A BibTeX entry per study, keyed by ``study_id``."""
    out = []
    for r in ds.studies.itertuples():
        fields = {
            "author": r.first_author + " and others",
            "title": "{" + str(r.title) + "}",
            "journal": r.journal,
            "year": str(r.year),
        }
        if not pd.isna(r.doi):
            fields["doi"] = r.doi
        if not pd.isna(r.pmid):
            fields["pmid"] = r.pmid
        if not pd.isna(r.duplicate_of):
            fields["note"] = f"Same cohort as {r.duplicate_of}"
        body = ",\n".join(f"  {k} = {{{v}}}" for k, v in fields.items())
        out.append(f"@article{{{r.study_id},\n{body}\n}}\n")
    return "\n".join(out)


def write_data_outputs(ds: Dataset) -> tuple[Harmonised, list[Path]]:
    """Write the harmonised table, exclusion report, evidence map (table + figure) and references."""
    from trt_recovery.report import save_figure

    h = harmonise(ds)
    paths.DERIVED_DIR.mkdir(parents=True, exist_ok=True)
    out = []
    p = paths.DERIVED_DIR / "harmonised_outcomes.csv"
    spreadsheet_safe(h.outcomes).to_csv(p, index=False)
    out.append(p)
    p = paths.DERIVED_DIR / "harmonisation_exclusions.csv"
    spreadsheet_safe(h.exclusions).to_csv(p, index=False)
    out.append(p)
    p = paths.DERIVED_DIR / "references.bib"
    p.write_text(bibtex(ds), encoding="utf-8")
    out.append(p)
    emap = evidence_map(ds, modelled_rows(ds))
    out += write_table(emap, "evidence_map")
    out += save_figure(evidence_map_figure(emap), "evidence_map")
    return h, out
