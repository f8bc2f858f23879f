"""Common clinical claims, checked against a fitted survival model.

Each claim is turned into a posterior quantity (a probability or an interval) with the evidence
behind it stated; a claim about a strategy or covariate the data cannot inform is reported as
such instead of being given a number that only reflects the prior.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trt_recovery.survival import predict as P


def _row(claim, quantity, estimate, probability, evidence):
    return {"claim": claim, "quantity": quantity, "estimate": estimate, "posterior_probability": probability,
            "evidence": evidence}


def _fmt(d):
    return f"{d['median']:.2f} (95% {d['lower']:.2f} to {d['upper']:.2f})"


def evaluate_claims(dt, meta, population: str = "trt") -> pd.DataFrame:
    rows = []
    used = pd.DataFrame(meta["used_rows"])

    def studies(strategy):
        s = used[used["strategy"] == strategy]["study_id"].unique() if len(used) else []
        return ", ".join(sorted(s)) or "no study in this fit"

    # 1. "hCG plus a SERM restores sperm in about 96% of men in about 4.6 months"
    prof = P.Profile(strategy="hcg_serm", population=population)
    r46 = P.recovered_by(dt, meta, prof, [4.6])[:, 0]
    ever = 1 - P.p_never(dt, meta, prof)
    rows.append(_row(
        "hCG + SERM restores sperm in about 96% of men in about 4.6 months",
        "P(recovered by 4.6 months); P(ever recovers) >= 0.96",
        f"{_fmt(P.summarise(r46))}; P(ever) {_fmt(P.summarise(ever))}",
        float(np.mean(ever >= 0.96)),
        f"hCG + SERM arms: {studies('hcg_serm')}. The 96% / 4.6-month figures come from Wenker 2015, an "
        "hCG-based combination series (SERM, AI or FSH by physician), with 4.6 months a mean among recoverers.",
    ))
    # 2. "recovery takes 4-6 months on average"
    prof0 = P.Profile(strategy="none", population=population)
    med = P.median_time(dt, meta, prof0)
    rows.append(_row(
        "Recovery takes 4-6 months on average (after stopping, no restart drug)",
        "median time to any sperm, spontaneous recovery",
        _fmt(P.summarise(med)),
        float(np.mean((med >= 4) & (med <= 6))),
        f"Spontaneous-recovery arms: {studies('none')}. " + (P.evidence_note(meta, prof0) or ""),
    ))
    # 3. "longer TRT means slower recovery"
    est = P.estimable_covariates(dt)
    if est["duration"]:
        b = dt["posterior"]["duration_time"].values.ravel()
        rows.append(_row("Longer TRT means slower recovery", "duration coefficient on log time (per log(months/12))",
                         _fmt(P.summarise(b)), float(np.mean(b > 0)), "Arms reporting TRT duration."))
    else:
        rows.append(_row("Longer TRT means slower recovery", "duration coefficient", "not estimable", np.nan,
                         "Fewer than two arms in this fit report the duration of androgen use with different values; "
                         "the dataset cannot test the claim (Kohn 2017 reports the association, but not as arm data)."))
    # 4. "hCG alone is slower than combinations"
    m_hcg = P.median_time(dt, meta, P.Profile(strategy="hcg", population=population))
    m_comb = P.median_time(dt, meta, P.Profile(strategy="hcg_serm", population=population))
    ok = np.isfinite(m_hcg) & np.isfinite(m_comb)
    note = P.evidence_note(meta, P.Profile(strategy="hcg", population=population))
    rows.append(_row("hCG alone is slower than hCG combinations", "P(median hCG alone > median hCG + SERM)",
                     f"ratio {_fmt(P.summarise(m_hcg[ok] / m_comb[ok]))}" if ok.any() else "n/a",
                     float(np.mean(m_hcg[ok] > m_comb[ok])) if ok.any() else np.nan,
                     note or f"hCG-alone arms: {studies('hcg')}"))
    # 5. "pure enclomiphene preserves sperm output better than TRT"
    rows.append(_row("Enclomiphene preserves sperm output better than TRT", "not modelled", "no data", np.nan,
                     "No enclomiphene arm with semen numbers was found (Wiehle 2014 abstract gives none; Kaminetsky "
                     "2013 not in the corpus); preservation outcomes are not part of the time-to-recovery model."))
    return pd.DataFrame(rows)
