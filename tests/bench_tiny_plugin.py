"""Importing this module shrinks the quick profile's representation-metric sizes (sample bank,
FactorVAE and BetaVAE scores), in this process and in every worker that imports it through
``--plugins bench_tiny_plugin``; the metric settings enter the cell ids, so the shrunk cells
never mix with real ones."""

from metrics.bank import BANK_PROFILES
from metrics.registry import METRICS

TINY_METRICS = {
    "bank": {"num_train": 60, "num_test": 30},
    "fvm": {"batch_size": 8, "num_train": 12, "num_eval": 8, "num_variance_estimate": 64},
    "betavae": {"batch_size": 8, "num_train": 12, "num_eval": 8},
}

BANK_PROFILES["quick"] = TINY_METRICS["bank"]
for _name in ("fvm", "betavae"):
    METRICS.get(_name).profiles["quick"] = TINY_METRICS[_name]
