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
from IPython.display import Markdown, display

from trt_recovery.posterior import load_fit
from trt_recovery.survival import report as S

fit = load_fit(analysis)
print(fit.summary_line())

# %% [markdown]
# ## Recovery curves by strategy (testosterone therapy, any sperm)

# %%
display(S.curves_figure(fit))

# %% [markdown]
# ## Median time to recovery and P(recovered by 12 months), per strategy
#
# Strategies marked `direct_evidence = False` have no arm of this population in this fit: their
# numbers are the prior plus structure borrowed from other strategies and populations, not
# evidence about them. `studies`, `men` and `rows` count what the fit used for each strategy in
# this population.

# %%
table = S.main_table(fit)
display(table.round(3))

# %% [markdown]
# ## Contrasts against spontaneous recovery (12 months)

# %%
display(S.contrasts_table(fit).round(3))

# %% [markdown]
# ## Does the model reproduce what each study reported? (posterior predictive check)

# %%
ppc = S.ppc_table(fit)
display(S.ppc_figure(ppc))
display(ppc.round(3))

# %% [markdown]
# ## What the priors alone imply (prior predictive check)

# %%
display(S.prior_predictive_figure(fit))

# %% [markdown]
# ## Rows the model could not use, and why

# %%
display(fit.exclusions.groupby("reason").size().rename("rows").to_frame())

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
