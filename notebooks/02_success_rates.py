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
# # Recovery by the end of follow-up, by strategy
#
# **Question.** Of men who stop testosterone (or steroids), what share get sperm back by the end of
# a study's follow-up, under each restart strategy and in each population?
#
# This notebook only *shows* results: the posterior is fitted by `make fit`
# (`trt-recovery fit success_rate`) and loaded here through the package. The model is
# `binomial_success` (see its docstring: strategy and population effects, non-centred study
# random effect).

# %% tags=["parameters"]
analysis = "success_rate"

# %%
from IPython.display import Markdown, display

from trt_recovery import success
from trt_recovery.posterior import load_fit

fit = load_fit(analysis)
print(fit.summary_line())

# %% [markdown]
# ## Observed arms and pooled estimates

# %%
observed = success.observed_rates(fit.used)
pooled = success.pooled_table(fit)
fig = success.forest_plot(observed, pooled)
display(fig)

# %%
cols = ["strategy_label", "population_label", "studies", "men", "recovered", "pooled_rate_median", "pooled_rate_lower95",
        "pooled_rate_upper95", "prediction_lower95", "prediction_upper95",
        "evidence_flag", "sensitivity_diagnosis"]  # how far the data moved each number
display(pooled[[c for c in cols if c in pooled]].round(3))

# %% [markdown]
# ## Population shifts
#
# How much each population's recovery differs from the reference population (the first row, fixed
# at 0), on the logit scale, for every strategy alike. A population seen with only one strategy
# is hard to separate from that strategy, and its shift leans on the prior.

# %%
display(success.population_shift_table(fit).round(3))

# %% [markdown]
# ## Rows not used, and why
#
# Every extracted outcome that did not enter this model is listed with its reason.

# %%
display(fit.exclusions)

# %% [markdown]
# ## What the numbers mean
#
# The pooled rate is the posterior median (with a 95% credible interval) of the share recovered in an
# *average* study using that strategy; the prediction interval is where a *new* study's rate would fall,
# which is wider because studies differ. Arms use different recovery thresholds and follow-up times, so
# these rates are not adjusted for either: the survival model answers "how fast". Each row is one
# strategy in one population (only combinations with data are shown). With one or two studies per
# strategy the intervals are wide, and a strategy with a single study leans heavily on the
# prior and on the between-study spread learnt from the others.

# %%
for r in pooled.itertuples():
    display(Markdown(
        f"- **{r.strategy_label}, {r.population_label}**: {r.pooled_rate_median:.0%} (95% CrI {r.pooled_rate_lower95:.0%} to "
        f"{r.pooled_rate_upper95:.0%}) from {r.studies} study/studies and {r.men} men; a new study could see "
        f"{r.prediction_lower95:.0%} to {r.prediction_upper95:.0%}."
    ))
