"""Display names and colours for figures and tables (strategy names spelled out)."""

from __future__ import annotations

STRATEGY_LABELS = {
    "none": "Spontaneous (no restart drug)",
    "hcg": "hCG alone",
    "hcg_serm": "hCG + SERM",
    "hcg_ai": "hCG + aromatase inhibitor",
    "hcg_fsh": "hCG + FSH/hMG",
    "hcg_combination": "hCG-based combination (per physician)",
    "serm": "SERM alone",
    "ai": "Aromatase inhibitor alone",
    "gonadorelin": "Gonadorelin / GnRH",
    "hcg_during_trt": "hCG during continued testosterone",
    "fsh_during_trt": "FSH during continued testosterone",
    "hcg_fsh_during_trt": "hCG + FSH during continued testosterone",
    "continued_trt": "Continued testosterone",
    "mixed_treatments": "Mixed treatments",
}
POPULATION_LABELS = {
    "trt": "Testosterone therapy",
    "aas": "Anabolic steroids",
    "contraception": "Contraception trials",
    "mixed": "Mixed",
    "hh": "Hypogonadotropic hypogonadism",
}
SCREENING_REASON_LABELS = {
    "no_identifier": "no PMID/DOI visible",
    "secondary_document": "review, meta-analysis or pooled analysis",
    "not_retrievable": "report or results not readable",
    "not_eligible_population": "men not stopping androgens",
    "no_usable_outcome": "no semen recovery number",
    "inconsistent_report": "report contradicts itself",
}
#: Okabe-Ito palette (colour-blind safe).
OKABE_ITO = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000"]


def strategy_label(term: str) -> str:
    return STRATEGY_LABELS.get(term, term)


def population_label(term: str) -> str:
    return POPULATION_LABELS.get(term, term)


def strategy_colour(term: str) -> str:
    """The colour of a strategy in every figure (fixed by its place in the vocabulary above)."""
    keys = list(STRATEGY_LABELS)
    return OKABE_ITO[keys.index(term) % len(OKABE_ITO)] if term in keys else "#777777"


def threshold_label(term: str) -> str:
    """A recovery threshold in words, from the schema's vocabulary (e.g. '20' -> '20 million/mL')."""
    from trt_recovery.schema import load_schema

    text = load_schema().vocabularies.get("threshold", {}).get(term)
    return str(text).split(" (")[0] if text else term


def screening_reason_label(term: str) -> str:
    return SCREENING_REASON_LABELS.get(term, term)
