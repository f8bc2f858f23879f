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
# `binomial_success` (see its docstring: strategy, population and threshold effects, non-centred
# study random effect). Rates are for the most lenient threshold, any sperm in the ejaculate: an arm
# reported at another threshold (20 million/mL, total motile count, own baseline, "improvement")
# reaches it through a threshold effect, the same ladder the survival model uses.
#
# The last sections answer other questions with the same machinery: do men who stay on
# testosterone keep sperm output when low-dose hCG (or FSH) is added (`preservation` analysis)?
# And how often did treatment end in a pregnancy (`pregnancy` analysis)?

# %% tags=["parameters"]
analysis = "success_rate"
preservation = "preservation"
pregnancy = "pregnancy"

# %%
from IPython.display import Markdown, display

from trt_recovery import success
from trt_recovery.posterior import load_fit

fit = load_fit(analysis)
print(fit.summary_line())

# %% [markdown]
# ## Observed arms and pooled estimates

# %%
observed, pooled, fig, shown = success.view(fit, "success")
display(fig)

# %%
display(shown.round(3))  # evidence_flag, sensitivity_diagnosis: how far the data moved each number

# %% [markdown]
# ## Against spontaneous recovery
#
# Each strategy against no restart drug (`none`) in the same population, average study, any sperm.

# %%
display(success.contrast_table(fit, "none").round(3))

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
# which is wider because studies differ. Thresholds are put on one scale (any sperm) by the threshold
# effects; follow-up times are not adjusted for: the survival model answers "how fast". Each row is one
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

# %% [markdown]
# ## Sperm kept during ongoing androgen (preservation)
#
# **Question.** For men who *stay* on testosterone (or steroids), does adding low-dose hCG (or FSH)
# keep sperm in the ejaculate, compared with androgen alone? The `preservation` analysis fits the
# same hierarchical binomial to counts of men who kept sperm at the end of follow-up on therapy
# (model `binomial_preservation`; `trt-recovery preserve --strategy hcg_during_trt` prints the
# same answer).

# %%
pres = load_fit(preservation)
print(pres.summary_line())
_, _, p_fig, p_shown = success.view(pres, "preservation")
display(p_fig)
display(p_shown.round(3))
display(success.contrast_table(pres, success.WORDING["preservation"]["reference"]).round(3))

# %% [markdown]
# **How to read it.** The comparator, testosterone alone, rests on one trial of a short-acting
# nasal gel chosen *because* it suppresses the axis less (Ramasamy 2020, a total motile count above
# 5 million at 3 months): it is not typical of injections or long-acting gels, which make most men
# azoospermic within months (the contraception trials). The hCG rows are one TRT series (every man
# kept sperm), one steroid-user cohort and a small suppression study at the stricter own-baseline
# threshold. Every interval is wide and several carry a possible prior-data conflict; the honest
# summary is that the data are compatible with hCG keeping sperm in most men, and cannot yet say by
# how much it beats androgen alone. hCG + FSH started *during* testosterone has no count of men who
# kept sperm (its one arm restarts output after suppression, a recovery row): an evidence gap.

# %%
display(pres.exclusions)

# %% [markdown]
# ## Pregnancy after treatment
#
# **Question.** How often did treatment end in a pregnancy? The `pregnancy` analysis fits the same
# hierarchical binomial (without a threshold: a pregnancy has none) to counts of pregnancies by
# the end of follow-up (model `binomial_pregnancy`, whose docstring says why this is a separate
# pooled analysis and not a second stage of the survival model; `trt-recovery pregnancy
# --strategy hcg_fsh --population hh` prints one cell).

# %%
preg = load_fit(pregnancy)
print(preg.summary_line())
_, _, g_fig, g_shown = success.view(preg, "pregnancy")
display(g_fig)
display(g_shown.round(3))

# %% [markdown]
# **How to read it.** The denominators are each source's own (all men treated, men trying to
# conceive, treatment courses, men who reached spermatogenesis) and no row gives a time since
# recovery, so a rate here is "pregnancy by the end of that study, among the men it counted", not
# a monthly conception rate. Most rows are men with hypogonadotropic hypogonadism on gonadotropins
# (indirect evidence for men stopping androgens); the one steroid-user cohort (Alhashimi 2022,
# mixed treatments, 12 months) is the only direct row. A strategy or population without a row has
# no estimate.

# %%
display(preg.exclusions)
