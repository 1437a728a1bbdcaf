"""The learned quality predictor: how well a cheap and a strong model are likely to answer
this conversation, and so how much a strong model would add.

Pure: numpy and the task analysis only (no Redis, Flask or Celery). `load_shipped()` reads
the artifact that ships in this package; `orchestrator router train` rebuilds it
(orchestrator/router_training/, which alone needs the training-only packages).
"""

from orchestrator.core.routing_model.model import Prediction, QualityModel, load_shipped
from orchestrator.core.routing_model.tiers import resolve_tier

__all__ = ["Prediction", "QualityModel", "load_shipped", "resolve_tier"]
