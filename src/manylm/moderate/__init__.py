"""Empirical Bayes moderation of variances and the moderated statistics."""

from manylm.moderate.ebayes import ebayes, ordinary_statistics, treat
from manylm.moderate.fdist import FDistFit, fit_f_dist
from manylm.moderate.fstat import f_statistic
from manylm.moderate.lowess import lowess
from manylm.moderate.moderated_fit import ModeratedFit
from manylm.moderate.robust import RobustFDistFit, fit_f_dist_robustly
from manylm.moderate.special import trigamma_inverse
from manylm.moderate.squeeze import SqueezedVariances, squeeze_var

__all__ = [
    "FDistFit",
    "ModeratedFit",
    "RobustFDistFit",
    "SqueezedVariances",
    "ebayes",
    "f_statistic",
    "fit_f_dist",
    "fit_f_dist_robustly",
    "lowess",
    "ordinary_statistics",
    "squeeze_var",
    "treat",
    "trigamma_inverse",
]
