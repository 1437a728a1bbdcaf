"""The routing strategies the API and the Python API accept."""

from __future__ import annotations

import enum


class RoutingStrategy(str, enum.Enum):
    COST_OPTIMAL = "cost_optimal"
    PERFORMANCE_OPTIMAL = "performance_optimal"
    QUALITY_OPTIMAL = "quality_optimal"
    BALANCED = "balanced"
    USER_PREFERENCE = "user_preference"
