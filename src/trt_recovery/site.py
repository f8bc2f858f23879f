"""``make site``: one self-contained HTML page (no server, no network, opens from ``file://``) built
from the cached results: an interactive recovery calculator, the summary of findings, the evidence
map, the PRISMA flow, the forest plots and the recovery curves.

The calculator evaluates, in the browser, the sum of per-draw components that
:mod:`trt_recovery.survival.calculator` extracts from the survival fit through the model's graph
(``site_assets/calculator.js``; the family's distribution function comes from
:attr:`trt_recovery.survival.families.Family.js`). The page embeds :data:`PAGE_DRAWS` evenly
thinned posterior draws, rounded to :data:`DIGITS` significant digits: it agrees with
``trt-recovery predict`` within Monte Carlo error, and exactly with the Python bundle restricted
to the same draws (both checked by tests). Covariates are offered as choices whose model-scale
values are computed here, by the covariate's own transform, so the page holds no model code but the
sum and the family.

Figures and tables are inlined (PNG as base64, CSV as HTML tables); one that is missing is named
on the page, not silently left out. No CDN: every byte the page needs is in it.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
from importlib import resources
from pathlib import Path

import numpy as np

from trt_recovery import paths
from trt_recovery.survival import design
from trt_recovery.summaries import CI_PROB
from trt_recovery.survival.calculator import NO_ANDROGEN_POPULATION, PREDICTORS, Bundle, fresh_bundle
from trt_recovery.survival.families import get_family

#: Posterior draws embedded in the page (evenly thinned).
PAGE_DRAWS = 2000
#: Significant digits of the embedded draws.
DIGITS = 7
#: Covariate choices offered by the page (raw units); the population average is always offered.
CHOICES = {
    "duration": (3, 6, 12, 24, 36, 60, 120, 240),
    "age": (20, 25, 30, 35, 40, 45, 50, 55, 60, 70),
    "azoospermia": (0.0, 0.25, 0.5, 0.75, 1.0),
}
#: Thresholds offered first (the ladder); the others follow.
CURVE_MONTHS = 36
FIGURES = (
    ("survival_curves", "Recovery curves by strategy (survival model, average study)"),
    ("evidence_map", "Evidence map: studies, men and modelled rows per strategy and population"),
    ("prisma_flow", "PRISMA 2020 flow of records and studies"),
    ("success_rate_forest", "Success rates (any sperm) by strategy"),
    ("preservation_forest", "Sperm kept during ongoing androgen, by strategy"),
    ("concentration_forest", "Sperm concentration reached"),
)
TABLES = (("summary_of_findings", "Summary of findings (GRADE-style certainty, computed from the data)"),)


def thinned(bundle: Bundle, n: int = PAGE_DRAWS) -> Bundle:
    """The bundle on ``n`` evenly spaced draws, rounded to :data:`DIGITS` significant digits (what the
    page embeds; a test compares the page's JavaScript with this object)."""
    total = bundle.arrays["shape"].shape[-1]
    idx = np.unique(np.linspace(0, total - 1, min(n, total)).round().astype(int))

    def cut(v: np.ndarray) -> np.ndarray:
        v = v[..., idx]
        return np.array([float(f"{x:.{DIGITS}g}") for x in v.reshape(-1)]).reshape(v.shape)

    return Bundle({k: cut(v) for k, v in bundle.arrays.items()}, bundle.meta)


def page_data(bundle: Bundle) -> dict:
    """What the page's JavaScript reads (``DATA``): levels with labels, covariate choices on the
    model's scale, the thinned components, flags, evidence notes and provenance."""
    from trt_recovery.labels import population_label, strategy_label, threshold_label

    small = thinned(bundle)
    comp = {}
    for k in PREDICTORS:
        comp[k] = {part.split("/", 1)[1]: small.arrays[part].tolist() for part in small.arrays if part.startswith(k + "/")}
    comp["shape"] = small.arrays["shape"].tolist()
    levels = bundle.meta["levels"]
    ladder = [t for t in _ladder() if t in levels["threshold"]]
    covariates = []
    for c in bundle.meta["covariates"]:
        cov = design.COVARIATE[c["name"]]
        choices = [{"value": v, "x": float(cov.to_model(np.array(float(v))))} for v in CHOICES.get(c["name"], ())]
        covariates.append({**c, "choices": choices})
    meta = bundle.meta
    return {
        "levels": levels,
        "labels": {"strategy": {s: strategy_label(s) for s in levels["strategy"]},
                   "population": {p: population_label(p) for p in levels["population"]},
                   "threshold": {t: threshold_label(t) for t in levels["threshold"]},
                   "preparation": {p: p.replace("_", " ") for p in levels["preparation"]}},
        "threshold_order": ladder + [t for t in levels["threshold"] if t not in ladder],
        "ci_prob": CI_PROB,
        "unknown_preparation": design.UNKNOWN_PREPARATION,
        "no_androgen_population": NO_ANDROGEN_POPULATION,
        "covariates": covariates,
        "components": comp,
        "flags": {k: [v["evidence_flag"], v.get("sensitivity_diagnosis", "")] for k, v in meta["flags"].items()},
        "flag_times": meta["flag_times"],
        "notes": meta["notes"],
        "evidence": {k: {"studies": v["studies"], "men": v["men"], "rows": v["rows"]} for k, v in meta["evidence"].items()},
        "provenance": {"analysis": meta["analysis"], "model": meta["model"], "family": meta["family"], "seed": meta["seed"],
                       "posterior_draws": meta["chains"] * meta["draws"], "page_draws": len(comp["shape"]),
                       "posterior_sha256": meta["fingerprint"]["posterior"][:12]},
    }


def _ladder() -> list[str]:
    from trt_recovery.schema import load_schema

    return list(load_schema().threshold_ladder)


def _asset(name: str) -> str:
    return resources.files("trt_recovery").joinpath("site_assets", name).read_text(encoding="utf-8")


def _figure(name: str, caption: str) -> str:
    path = paths.FIGURES_DIR / f"{name}.png"
    if not path.exists():
        return (f'<figure class="missing"><p>Figure <code>{html.escape(name)}.png</code> is not built yet '
                f"(run <code>make all</code>).</p><figcaption>{html.escape(caption)}</figcaption></figure>")
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


#: columns of the summary of findings shown on the page (the CSV has them all)
SOF_COLUMNS = {"outcome_label": "Outcome", "target_population_label": "Population", "strategy_label": "Strategy",
               "studies": "Studies", "men": "Men", "estimate_ci": "Estimate (95% CrI)", "evidence_flag": "Data vs prior",
               "certainty": "Certainty", "reasons": "Why not higher"}


def _table(name: str, caption: str) -> str:
    import pandas as pd

    path = paths.TABLES_DIR / f"{name}.csv"
    if not path.exists():
        return f"<p class='missing'>Table <code>{html.escape(name)}.csv</code> is not built yet (run <code>make all</code>).</p>"
    df = pd.read_csv(path)
    df["estimate_ci"] = [f"{e:.0f} ({lo:.0f} to {hi:.0f})" if pd.notna(e) else "" for e, lo, hi in
                         zip(df["estimate"], df["lower95"], df["upper95"], strict=True)]
    df = df[[c for c in SOF_COLUMNS if c in df.columns]].rename(columns=SOF_COLUMNS)
    body = df.to_html(index=False, border=0, na_rep="", escape=True).split("\n", 1)[1].rsplit("</table>", 1)[0]
    return f"<div class='table'><table class='sof'><caption>{html.escape(caption)}</caption>{body}</table></div>"


def render(bundle: Bundle, built: str | None = None) -> str:
    """The page's HTML (a string)."""
    from jinja2 import Environment

    family = get_family(bundle.meta["family"])
    if family.js is None:
        raise ValueError(f"the calculator page cannot show family {family.name!r} (no JavaScript version)")
    env = Environment(autoescape=False)
    template = env.from_string(_asset("page.html.j2"))
    return template.render(
        data=json.dumps(page_data(bundle), separators=(",", ":"), allow_nan=False).replace("</", "<\\/"),
        family=family.js, calculator=_asset("calculator.js"), built=built or dt.date.today().isoformat(),
        figures=[_figure(n, c) for n, c in FIGURES], tables=[_table(n, c) for n, c in TABLES],
        curve_months=CURVE_MONTHS,
    )


def build_site(analysis: str = "survival", target: Path | None = None, seed: int = 0) -> Path:
    """Write ``analysis/results/site/index.html`` from the analysis's calculator bundle (built from
    the cached posterior first when missing or out of date)."""
    bundle = fresh_bundle(analysis, seed=seed)
    if bundle is None:
        from trt_recovery.posterior import load_fit
        from trt_recovery.survival.calculator import write_bundle

        write_bundle(load_fit(analysis), seed=seed)
        bundle = fresh_bundle(analysis, seed=seed)
        if bundle is None:  # pragma: no cover - the bundle just written must be fresh
            raise RuntimeError(f"the calculator bundle of {analysis!r} is not fresh right after it was built")
    target = target or paths.SITE_DIR / "index.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(render(bundle), encoding="utf-8")
    tmp.replace(target)
    return target
