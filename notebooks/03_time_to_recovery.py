# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python (trt-recovery)
#     language: python
#     name: trt-recovery
# ---

# %% [markdown]
# # How fast does sperm come back, and how likely is it at all?
#
# **Question.** After stopping testosterone (or steroids), with or without a restart protocol, what
# share of men have sperm back by 3, 6, 12 and 24 months, how long does it take for half of them, and
# how many never recover?
#
# The posterior comes from `make fit` (model `survival_cure_weibull`: hierarchical mixture-cure
# Weibull model fed by every reporting format; see its module docstring). This notebook loads it
# through the package and shows it; it computes nothing the package does not.

# %% tags=["parameters"]
analysis = "survival"

# %%
import pandas as pd
import xarray as xr
from IPython.display import Markdown, display

from trt_recovery.fitting import load_posterior
from trt_recovery.report import fit_summary
from trt_recovery.survival import predict as P
from trt_recovery.survival import report as S

posterior, meta = load_posterior(analysis)
print(fit_summary(meta))

# %% [markdown]
# ## Recovery curves by strategy (testosterone therapy, any sperm)

# %%
display(S.curves_figure(posterior, meta))

# %% [markdown]
# ## Median time to recovery and P(recovered by 12 months), per strategy
#
# Strategies marked `direct_evidence = False` have no arm in this fit: their numbers are the prior
# plus structure borrowed from other strategies, not evidence about them.

# %%
table = S.main_table(posterior, meta)
display(table.round(3))

# %% [markdown]
# ## Contrasts against spontaneous recovery (12 months)

# %%
rows = []
for s in S.strategies_with_evidence(meta):
    if s != "none":
        c = P.contrast_vs_none(posterior, meta, P.Profile(strategy=s), 12.0)
        rows.append({"strategy": s, **c["diff_recovered_by_t"], "p_better_than_none": c["p_better_than_none"]})
display(pd.DataFrame(rows).round(3))

# %% [markdown]
# ## Does the model reproduce what each study reported? (posterior predictive check)

# %%
ppc = S.ppc_table(posterior, meta)
display(S.ppc_figure(ppc))
display(ppc.round(3))

# %% [markdown]
# ## What the priors alone imply (prior predictive check)

# %%
prior = xr.DataTree.from_dict({"posterior": posterior["prior"].to_dataset()})
display(S.prior_predictive_figure(prior, meta))

# %% [markdown]
# ## Rows the model could not use, and why

# %%
exclusions = pd.DataFrame(meta["exclusions"], columns=["outcome_id", "arm_id", "study_id", "reason"])
display(exclusions.groupby("reason").size().rename("rows").to_frame())

# %% [markdown]
# ## In plain words

# %%
for r in table[table.direct_evidence].itertuples():
    display(Markdown(
        f"- **{r.strategy_label}**: half of men have sperm back by about {r.median_months:.1f} months "
        f"(95% CrI {r.median_lower95:.1f} to {r.median_upper95:.1f}); by 12 months {r.p_recovered_12m:.0%} have "
        f"(95% CrI {r.p_recovered_12m_lower95:.0%} to {r.p_recovered_12m_upper95:.0%}); an estimated {r.p_never:.0%} never do."
    ))
display(Markdown(
    "These are average-study estimates; a new clinic's experience may differ more (see the new-study bands). "
    "Thresholds, time zeros and populations differ between studies, and the few studies per strategy make the "
    "intervals wide: differences between strategies here are not established."
))
