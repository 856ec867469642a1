"""Metadata of every reported score: direction, range and regression tolerance.

The leaderboard and ``bench check`` read this table; a score key missing here is shown but never
checked.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    key: str
    description: str
    higher_is_better: bool = True
    low: float = 0.0
    high: float = 1.0
    tolerance: float = 0.05  # absolute; a change worse than this is a regression


METRIC_INFO: dict[str, MetricInfo] = {}


def describe(key: str, description: str, **kwargs: object) -> MetricInfo:
    """Add (or replace) the metadata of one score key."""
    info = MetricInfo(key, description, **kwargs)  # type: ignore[arg-type]
    METRIC_INFO[key] = info
    return info


describe("mig", "Mutual Information Gap (Chen et al. 2018), 20-bin discretiser")
describe("sap", "Separated Attribute Predictability (Kumar et al. 2018), LinearSVC C=0.01")
describe("dci_disentanglement", "DCI disentanglement (Eastwood & Williams 2018); mode in settings")
describe("dci_completeness", "DCI completeness")
describe("dci_informativeness_train", "DCI informativeness: GBT train accuracy")
describe("dci_informativeness_test", "DCI informativeness: GBT test accuracy")
describe("modularity", "Modularity (Ridgeway & Zemel 2018)")
describe("explicitness_train", "Explicitness: macro ROC-AUC of logistic regression, train set",
         low=0.5)
describe("explicitness_test", "Explicitness: macro ROC-AUC of logistic regression, test set",
         low=0.5)
describe("fvm_train_accuracy", "FactorVAE score: majority-vote train accuracy")
describe("fvm_eval_accuracy", "FactorVAE score: majority-vote eval accuracy")
describe("fvm_num_active_dims", "FactorVAE: code dims with std >= prune threshold (information)",
         high=float("inf"), tolerance=float("inf"))
describe("betavae_train_accuracy", "BetaVAE score: logistic-regression train accuracy")
describe("betavae_eval_accuracy", "BetaVAE score: logistic-regression eval accuracy")
describe("disentanglement_score", "Discovery: mean of (largest - second largest) per direction")
describe("attribute_count", "Discovery: attributes that are some direction's argmax",
         high=float("inf"), tolerance=1.0)
describe("disentanglement_score_meandiff",
         "Discovery, reference-code variant: score of R built from |mean difference|")
describe("attribute_count_meandiff",
         "Discovery, reference-code variant: attribute count of the |mean difference| R",
         high=float("inf"), tolerance=1.0)
describe("edit_w_plus_displacement",
         "Mean W+ L2 displacement of the calibrated edit (common edit-size unit; not a score)",
         higher_is_better=False, high=float("inf"), tolerance=float("inf"))
describe("edit_capped_fraction",
         "Fraction of directions whose calibrated edit hit the W+ displacement cap "
         "(they change the image less than the target)",
         higher_is_better=False, tolerance=0.2)
describe("pairs_kept_fraction",
         "Fraction of scored directions kept after removing duplicates (|cos| > 0.95)",
         tolerance=0.2)
