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
# # Sperm concentration reached after stopping
#
# **Question.** Once sperm come back, how many are there? What concentration (million/mL) do men
# reach after stopping testosterone or steroids, by restart strategy and population?
#
# The posterior is fitted by `make fit` (`trt-recovery fit concentration`) and loaded here. The
# model is `lognormal_concentration`: each arm's concentrations are log-normal; its log median
# depends on strategy, population and a study random effect. Reported means (with SD, SE or a CI)
# and reported medians (with IQR or range) each enter through their own sampling distribution
# under that log-normal, so **a median is never treated as a mean** (methods and references in
# the model's docstring: Higgins et al. 2008 for the log-normal moments, McGrath et al. 2020 for
# fitting a parametric family to reported quantiles).

# %% tags=["parameters"]
analysis = "concentration"

# %%
from IPython.display import Markdown, display

from trt_recovery import concentration
from trt_recovery.posterior import load_fit

fit = load_fit(analysis)
print(fit.summary_line())

# %% [markdown]
# ## What each arm reported
#
# `dispersion_used` says how the reported spread entered the model (or why it did not).

# %%
observed = concentration.observed_table(fit.used)
display(observed)

# %% [markdown]
# ## Pooled medians by strategy and population

# %%
pooled = concentration.pooled_table(fit)
display(concentration.forest_plot(observed, pooled, het=concentration.interval(fit.posterior["study_sd"])))
cols = ["strategy_label", "population_label", "studies", "men", "median_conc", "median_conc_lower95",
        "median_conc_upper95", "mean_conc", "new_study_median_lower95", "new_study_median_upper95",
        "evidence_flag", "sensitivity_diagnosis"]  # how far the data moved each number
display(pooled[[c for c in cols if c in pooled]].round(2))

# %% [markdown]
# ## Spread between studies and between men

# %%
display(concentration.spread_table(fit).round(3))

# %% [markdown]
# ## Rows not used, and why
#
# Every extracted outcome that did not enter this model is listed with its reason (most are other
# outcome kinds; concentrations kept during co-treatment are left out by the analysis' selection).

# %%
excl = fit.exclusions
display(excl[~excl["reason"].str.contains("is not a concentration")])
print(f"{len(excl)} rows excluded in all; {len(fit.used)} arms used.")

# %% [markdown]
# ## What the numbers mean
#
# The pooled median is the concentration of the *typical* man (the geometric mean) in an average
# study with that strategy and population; the mean is higher because concentrations are skewed.
# The prediction interval is where a new study's median would fall. Arms were measured at
# different times after stopping and the model does not adjust for time; it describes
# concentration at the end of each study's follow-up. Very few abstracts report a concentration
# summary, so each cell below rests on one or two studies and the intervals are wide; cells with
# no study are not shown, and no cell should be read as a comparison between strategies.

# %%
for r in pooled.itertuples():
    display(Markdown(
        f"- **{r.strategy_label}, {r.population_label}**: typical concentration {r.median_conc:.1f} million/mL "
        f"(95% CrI {r.median_conc_lower95:.1f} to {r.median_conc_upper95:.1f}) from {r.studies} study/studies "
        f"and {r.men} men; a new study's median could lie between {r.new_study_median_lower95:.1f} and "
        f"{r.new_study_median_upper95:.1f}."
    ))
