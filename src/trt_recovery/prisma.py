"""PRISMA 2020 flow of the records behind the dataset, computed from the screening log.

Every box of the flow is a count over ``data/screening.csv`` (one row per record considered,
with its ``decision`` and, for exclusions, a ``reason_category``) and, for the last boxes, over the
studies that each analysis actually uses (the model's own data preparation, so a study counts
for an analysis only if one of its rows reaches that model). Nothing is typed in.

The stages, in PRISMA 2020 terms (databases and registers; our "database" is the stored
literature corpus searched in rounds 1 and 2, see ``data/README.md``):

* identification: records identified; the same record seen twice is removed
  (``duplicate_record``);
* screening: records screened; excluded at screening when no identifier could be seen
  (``no_identifier``: nothing to cite or check) or when the record is a review, meta-analysis or
  pooled re-analysis (``secondary_document``: its men are counted in the primary reports);
* retrieval: reports sought; not retrieved when the report or its results could not be read
  (``not_retrievable``);
* eligibility: reports assessed; excluded with the remaining reason groups;
* included: studies in the dataset (``included``), and the reports of those studies (plus second
  reports of the same men, ``duplicate``, and secondary documents used for one quoted number,
  ``secondary_only``); then the studies and rows that reach each analysis.

The identity *assessed - excluded = included + duplicate + secondary_only* is checked, so a
screening log that does not add up is an error, not a wrong figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import pandas as pd

from trt_recovery.config import main_analyses
from trt_recovery.validate import Dataset

SCREENING_EXCLUSIONS = ("no_identifier", "secondary_document")
NOT_RETRIEVED = ("not_retrievable",)


class ScreeningLogError(ValueError):
    """The screening log cannot give a consistent flow (missing, or counts that do not add up)."""


@dataclass
class Flow:
    """The counts of each PRISMA box; ``reasons`` are (stage, reason group) -> records."""

    identified: int
    duplicate_records: int
    screened: int
    excluded_screening: int
    sought: int
    not_retrieved: int
    assessed: int
    excluded_eligibility: int
    studies_included: int
    reports_included: int
    reasons: dict[tuple[str, str], int] = field(default_factory=dict)
    analyses: pd.DataFrame = field(default_factory=pd.DataFrame)

    def table(self) -> pd.DataFrame:
        """One row per box (stage, box, records), exclusion reasons as indented rows."""
        rows = [
            ("identification", "Records identified (stored literature corpus, search rounds 1-2)", self.identified),
            ("identification", "Same record seen twice, removed", self.duplicate_records),
            ("screening", "Records screened", self.screened),
            ("screening", "Records excluded at screening", self.excluded_screening),
        ]
        rows += [("screening", f"  - {r}", n) for (s, r), n in self.reasons.items() if s == "screening"]
        rows += [
            ("retrieval", "Reports sought for retrieval", self.sought),
            ("retrieval", "Reports not retrieved (not readable in the stored corpus)", self.not_retrieved),
            ("eligibility", "Reports assessed for eligibility", self.assessed),
            ("eligibility", "Reports excluded", self.excluded_eligibility),
        ]
        rows += [("eligibility", f"  - {r}", n) for (s, r), n in self.reasons.items() if s == "eligibility"]
        rows += [
            ("included", "Studies included in the dataset", self.studies_included),
            ("included", "Reports of included studies", self.reports_included),
        ]
        for r in self.analyses.itertuples():
            rows.append(("analysis", f"Studies reaching analysis '{r.analysis}' ({r.rows} outcome rows)", r.studies))
        return pd.DataFrame(rows, columns=["stage", "box", "records"])


def _analysis_use(ds: Dataset, analyses: list[str]) -> pd.DataFrame:
    from trt_recovery.config import load_config
    from trt_recovery.harmonise import harmonise
    from trt_recovery.models import get_model

    h = harmonise(ds)
    rows = []
    for name in analyses:
        cfg = load_config(name)
        md = get_model(cfg.model).prepare(h.outcomes, cfg.data)
        used = md.used
        rows.append({"analysis": name, "studies": int(used["study_id"].nunique()) if len(used) else 0,
                     "rows": int(used["outcome_id"].nunique()) if len(used) else 0})
    return pd.DataFrame(rows, columns=["analysis", "studies", "rows"])


def flow(ds: Dataset, analyses: list[str] | None = None) -> Flow:
    """The PRISMA counts of ``ds`` (which must carry its screening log)."""
    from trt_recovery.labels import screening_reason_label

    sc = ds.screening
    if sc is None or sc.empty:
        raise ScreeningLogError(f"{ds.directory}/screening.csv is missing or empty: the PRISMA flow is built from it")
    dec = sc["decision"].value_counts()
    n = lambda k: int(dec.get(k, 0))  # noqa: E731
    excl = sc[sc["decision"] == "excluded"]
    cats = excl["reason_category"].value_counts()
    screening_out = int(cats.reindex(list(SCREENING_EXCLUSIONS)).fillna(0).sum())
    not_retrieved = int(cats.reindex(list(NOT_RETRIEVED)).fillna(0).sum())
    eligibility_out = int(len(excl) - screening_out - not_retrieved)
    identified = len(sc)
    screened = identified - n("duplicate_record")
    sought = screened - screening_out
    assessed = sought - not_retrieved
    reports_included = n("included") + n("duplicate") + n("secondary_only")
    if assessed - eligibility_out != reports_included:
        raise ScreeningLogError(
            f"screening log does not add up: {assessed} assessed - {eligibility_out} excluded != "
            f"{reports_included} reports included; decisions: {dec.to_dict()}")
    primary = ds.studies[ds.studies["duplicate_of"].isna()]
    reasons: dict[tuple[str, str], int] = {}
    for cat, k in cats.items():
        if cat in NOT_RETRIEVED:
            continue
        stage = "screening" if cat in SCREENING_EXCLUSIONS else "eligibility"
        reasons[(stage, screening_reason_label(cat))] = int(k)
    return Flow(
        identified=identified, duplicate_records=n("duplicate_record"), screened=screened,
        excluded_screening=screening_out, sought=sought, not_retrieved=not_retrieved, assessed=assessed,
        excluded_eligibility=eligibility_out, studies_included=len(primary), reports_included=reports_included,
        reasons=reasons, analyses=_analysis_use(ds, analyses if analyses is not None else main_analyses()),
    )


def flow_figure(f: Flow) -> plt.Figure:
    """The PRISMA 2020 diagram: main boxes down the left, exclusions to the right."""
    def reasons(stage: str) -> str:
        return "\n".join(f"{r}: {k}" for (s, r), k in f.reasons.items() if s == stage)

    left = [
        (f"Records identified\n(stored corpus, rounds 1-2)\nn = {f.identified}", f"Same record twice, removed\nn = {f.duplicate_records}"),
        (f"Records screened\nn = {f.screened}", f"Records excluded\nn = {f.excluded_screening}\n{reasons('screening')}"),
        (f"Reports sought for retrieval\nn = {f.sought}", f"Reports not retrieved\nn = {f.not_retrieved}"),
        (f"Reports assessed for eligibility\nn = {f.assessed}",
         f"Reports excluded\nn = {f.excluded_eligibility}\n{reasons('eligibility')}"),
        (f"Studies included\nn = {f.studies_included}\n(reports of them: {f.reports_included})", None),
    ]
    if len(f.analyses):
        txt = "\n".join(f"{r.analysis}: {r.studies} stud{'y' if r.studies == 1 else 'ies'}, "
                        f"{r.rows} row{'' if r.rows == 1 else 's'}" for r in f.analyses.itertuples())
        left.append((f"Reaching each analysis\n{txt}", None))
    height = 1.45 * len(left) + 0.6
    fig, ax = plt.subplots(figsize=(10, height))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, height)
    ax.axis("off")
    box = dict(boxstyle="round,pad=0.4", fc="white", ec="0.2")
    ys = [height - 0.9 - 1.45 * i for i in range(len(left))]
    for i, ((main, side), y) in enumerate(zip(left, ys, strict=True)):
        ax.text(2.6, y, main, ha="center", va="center", fontsize=8.5, bbox=box)
        if side:
            ax.text(7.2, y, side, ha="center", va="center", fontsize=7.5, bbox={**box, "fc": "0.95"})
            ax.annotate("", xy=(5.2, y), xytext=(4.3, y), arrowprops=dict(arrowstyle="->", color="0.3"))
        if i + 1 < len(left):
            ax.annotate("", xy=(2.6, ys[i + 1] + 0.45), xytext=(2.6, y - 0.45),
                        arrowprops=dict(arrowstyle="->", color="0.3"))
    ax.set_title("PRISMA 2020 flow of records (from data/screening.csv)", fontsize=10)
    fig.tight_layout()
    return fig


def write_prisma(ds: Dataset, analyses: list[str] | None = None) -> list:
    """Write ``tables/prisma_flow.*`` and ``figures/prisma_flow.*``."""
    from trt_recovery.report import save_figure
    from trt_recovery.tables import write_table

    f = flow(ds, analyses)
    out = write_table(f.table(), "prisma_flow", float_format="{:.0f}")
    fig = flow_figure(f)
    out += save_figure(fig, "prisma_flow")
    plt.close(fig)
    return out
