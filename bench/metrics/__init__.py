"""Metrics, one module per role: the protocol and extractor plan (``protocol``), sampling (``sampling``), FID / IS
/ KID / precision-recall through torch-fidelity (``fidelity``), the real-data floor (``floor``), intra-FID
(``intra_fid``), mode coverage (``coverage``), usefulness (``usefulness``), the discriminator's accuracy
(``discriminator``), feature extractors (``extractors``; DINOv2, CLIP and VGG16 in ``pretrained``), memorisation
(``memorisation``), density and coverage (``density``); and the :class:`Evaluator` a run builds once from them
(``evaluator``)."""

from bench.metrics import pretrained  # noqa: F401  (registers DINOv2, CLIP and VGG16)
from bench.metrics.evaluator import Evaluator
from bench.metrics.extractors import EXTRACTORS
from bench.metrics.fidelity import fidelity
from bench.metrics.protocol import ExtractorPlan, Protocol, plan_extractors
from bench.metrics.sampling import generate

__all__ = ["EXTRACTORS", "Evaluator", "ExtractorPlan", "Protocol", "fidelity", "generate", "plan_extractors"]
