"""trt-recovery: Bayesian evidence synthesis of sperm recovery after testosterone or anabolic steroids."""

__version__ = "0.1.0"
