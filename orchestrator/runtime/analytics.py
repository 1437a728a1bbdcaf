"""Analytics computed from what was recorded: per model (orchestrator/store/stats.py's hourly
counters), per user (orchestrator/store/usage.py's counters) and across users, with the user's
recommendations priced from their real usage. Nothing here writes to Redis.

Windows are whole hours of the stats' hourly buckets: `hour` is the current hour and the
previous one (between 60 and 120 minutes), `day` the current hour and the 24 before it,
`30d` the current hour and the 720 before it.
"""

from __future__ import annotations

import calendar
import time
from collections import Counter

from orchestrator.core.analysis import Complexity
from orchestrator.core.catalog import Catalog, ModelCapabilities
from orchestrator.core.embedding import EMBEDDING_KIND
from orchestrator.core.strategies import QUALITY_TOLERANCE, required_quality
from orchestrator.store.circuits import Circuits
from orchestrator.store.stats import LATENCY_BOUNDS_MS, Stats
from orchestrator.store.usage import UsageRow

WINDOWS = {"hour": 1, "day": 24, "30d": 720}
LEVEL_FLOOR = {Complexity.SIMPLE: 0.0, Complexity.MODERATE: 0.25, Complexity.COMPLEX: 0.5, Complexity.EXPERT: 0.75}
MIN_SAVING_SHARE = 0.10  # a cheaper model is recommended when it would have saved at least this share


def money(usd: float) -> str:
    return f"${usd:,.2f}" if abs(usd) >= 1 else f"${usd:.4f}"


# --- histograms

def quantile(histogram: dict[float, int], q: float) -> float | None:
    """The q-quantile (seconds) of a histogram {upper bound in ms (inf last): count}, with
    linear interpolation inside the bucket, as Prometheus's histogram_quantile does; the
    highest finite bound when it falls in the last, unbounded bucket. None when empty."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = q * total
    seen, lower = 0, 0.0
    for bound in sorted(histogram):
        count = histogram[bound]
        if count and seen + count >= rank:
            if bound == float("inf"):
                return lower / 1000
            return (lower + (bound - lower) * (rank - seen) / count) / 1000
        seen += count
        lower = bound if bound != float("inf") else lower
    return lower / 1000


def histogram_of(counters: dict, name: str) -> dict[float, int]:
    bounds = [*LATENCY_BOUNDS_MS, float("inf")]
    return {b: int(counters.get(f"{name}:{'inf' if b == float('inf') else b}", 0)) for b in bounds}


def summed(buckets: list[dict]) -> dict[str, float]:
    total: dict[str, float] = {}
    for bucket in buckets:
        for name, value in bucket.items():
            total[name] = total.get(name, 0.0) + float(value)
    return total


def model_summary(counters: dict[str, float], circuit: str | None = None) -> dict:
    requests = int(counters.get("requests", 0))
    ok = int(counters.get("ok", 0))
    input_tokens, output_tokens = int(counters.get("input_tokens", 0)), int(counters.get("output_tokens", 0))
    cost = counters.get("cost_micro", 0) / 1_000_000
    tokens = input_tokens + output_tokens
    latency, ttft = histogram_of(counters, "lat"), histogram_of(counters, "ttft")
    ttft_count = int(counters.get("ttft_count", 0))

    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 4)

    return {
        "requests": requests,
        "successes": ok,
        "failures": requests - ok,
        "success_rate": round(ok / requests, 4) if requests else None,
        "failures_by_class": {name.removeprefix("err:"): int(v) for name, v in sorted(counters.items())
                              if name.startswith("err:") and v},
        "latency": {"p50": rounded(quantile(latency, 0.5)), "p95": rounded(quantile(latency, 0.95)),
                    "mean": rounded(counters["latency_sum"] / ok) if ok and "latency_sum" in counters else None},
        "time_to_first_token": {
            "p50": rounded(quantile(ttft, 0.5)), "p95": rounded(quantile(ttft, 0.95)),
            "mean": rounded(counters.get("ttft_sum", 0) / ttft_count) if ttft_count else None,
        },
        "tokens": {"input": input_tokens, "output": output_tokens, "total": tokens},
        "cost": round(cost, 6),
        "cost_per_1k_tokens": round(cost / tokens * 1000, 6) if tokens else None,
        "fallbacks": int(counters.get("fallbacks", 0)),
        "circuit": circuit,
    }


def models_report(stats: Stats, circuits: Circuits, catalog: Catalog, window: str, now: float | None = None) -> dict:
    now = time.time() if now is None else now
    hour = int(now // 3600)
    first = hour - WINDOWS[window]
    every = [*catalog, *catalog.embeddings.values()]
    hours = stats.hours([m.model_name for m in every], first, hour)
    states = circuits.states([(m.model_name, m.provider) for m in every])
    models = []
    for model in every:
        summary = model_summary(summed(hours[model.model_name]), states.get(model.model_name))
        models.append({"model": model.model_name, "provider": model.provider, **summary})
    return {"window": window, "from": first * 3600.0, "to": now, "models": models}


# --- per user

def level_requirement(level: str) -> float:
    floor = LEVEL_FLOOR.get(level)
    return required_quality(floor if floor is not None else 0.0) - QUALITY_TOLERANCE


def list_cost(model: ModelCapabilities, input_tokens: int, output_tokens: int) -> float:
    return (input_tokens * model.cost_per_1k_input + output_tokens * model.cost_per_1k_output) / 1000


def cheaper_model_advice(rows: list[UsageRow], catalog: Catalog) -> list[dict]:
    """Per complexity level: the cheapest catalog model good enough for the level (its
    general quality at least what the level's easiest task needs), priced on the tokens this
    user actually sent and received at that level this month, against what was paid."""
    advice = []
    by_level: dict[str, list[UsageRow]] = {}
    for row in rows:
        if row.complexity != EMBEDDING_KIND:  # no chat model embeds, and another embedding model's vectors differ
            by_level.setdefault(row.complexity, []).append(row)
    for level, level_rows in by_level.items():
        paid = sum(r.cost for r in level_rows)
        requests = sum(r.requests for r in level_rows)
        if paid <= 0 or not requests:
            continue
        needed = level_requirement(level)
        options = [m for m in catalog if m.quality_for("default") >= needed]
        best, best_cost = None, paid
        for option in options:
            cost = sum(r.cost if r.model == option.model_name else list_cost(option, r.input_tokens, r.output_tokens)
                       for r in level_rows)
            if cost < best_cost - 1e-12:
                best, best_cost = option, cost
        saving = paid - best_cost
        if best is None or saving < MIN_SAVING_SHARE * paid:
            continue
        shares = Counter({r.model: r.requests for r in level_rows})
        top, top_requests = max(shares.items(), key=lambda kv: (kv[1], kv[0]))
        share = 100 * top_requests / requests
        advice.append({
            "kind": "cheaper_model",
            "message": (f"{share:.0f}% of your {level} tasks went to {top}; {best.model_name} would have cost "
                        f"{money(saving)} less this month ({requests} request{'s' if requests != 1 else ''}: "
                        f"{money(best_cost)} instead of {money(paid)})"),
            "savings": round(saving, 6),
            "details": {"complexity": level, "requests": requests, "paid": round(paid, 6),
                        "would_have_cost": round(best_cost, 6), "suggested_model": best.model_name,
                        "most_used_model": top, "most_used_share": round(share, 2),
                        "suggested_quality": best.quality_for("default"), "required_quality": round(needed, 3)},
        })
    return sorted(advice, key=lambda a: -a["savings"])


def pace_advice(spent: float, budget: float, now: float) -> list[dict]:
    """When this month's spend, at its pace so far, would run past the budget."""
    t = time.gmtime(now)
    start = calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0))
    days = calendar.monthrange(t.tm_year, t.tm_mon)[1]
    elapsed = max(now - start, 3600.0)  # at least an hour, so the first minutes do not project wildly
    projected = spent * days * 86400 / elapsed
    if budget <= 0 or projected <= budget or spent <= 0:
        return []
    over = projected - budget
    return [{
        "kind": "budget_pace",
        "message": (f"At this month's pace you would spend {money(projected)} by the end of the month, {money(over)} "
                    f"over your {money(budget)} budget; requests will be refused once it is spent. Use "
                    "cost_optimal for simple tasks, lower max_tokens or raise the budget."),
        "savings": round(over, 6),
        "details": {"spent": round(spent, 6), "projected": round(projected, 6), "monthly_budget": round(budget, 6)},
    }]


def user_report(
    user_id: str, budget: float, spent: float, held: float, cost_sensitivity: float,
    explicit: dict[str, tuple[str, ...]], learned_scores: dict[str, dict[str, float]],
    learned: dict[str, tuple[str, ...]], rows: list[UsageRow], catalog: Catalog, now: float | None = None,
) -> dict:
    now = time.time() if now is None else now
    effective = {**learned, **{level: models for level, models in explicit.items() if models}}
    by_level: dict[str, dict] = {}
    for row in rows:
        level = by_level.setdefault(row.complexity, {"requests": 0, "cost": 0.0, "models": {}})
        level["requests"] += row.requests
        level["cost"] += row.cost
        level["models"][row.model] = {"requests": row.requests, "cost": round(row.cost, 6),
                                      "input_tokens": row.input_tokens, "output_tokens": row.output_tokens}
    for level in by_level.values():
        level["cost"] = round(level["cost"], 6)
    return {
        "user_id": user_id,
        "month": time.strftime("%Y-%m", time.gmtime(now)),
        "metrics": {
            "monthly_budget": round(budget, 6),
            "current_spend": round(spent, 6),
            "reserved": round(held, 6),
            "budget_utilization": round(100 * spent / budget, 2) if budget else 0.0,
            "cost_sensitivity": cost_sensitivity,
            "preferred_models": {level: list(models) for level, models in sorted(effective.items())},
            "explicit_preferred_models": {level: list(m) for level, m in sorted(explicit.items()) if m},
            "learned_preferred_models": {
                level: [{"model": m, "score": round(s, 3)} for m, s in sorted(scores.items(), key=lambda kv: -kv[1])]
                for level, scores in sorted(learned_scores.items())
            },
            "requests": sum(r.requests for r in rows),
            "usage_by_complexity": by_level,
        },
        "recommendations": cheaper_model_advice(rows, catalog) + pace_advice(spent, budget, now),
    }


# --- across users

def admin_report(days: dict[str, list[dict]], top: int = 10) -> dict:
    per_user: Counter = Counter()
    per_model: Counter = Counter()
    pairs: Counter = Counter()
    requests: Counter = Counter()
    daily = []
    for day in sorted(days):
        rows = days[day]
        for row in rows:
            per_user[row["user_id"]] += row["cost"]
            per_model[row["model"]] += row["cost"]
            pairs[(row["user_id"], row["model"])] += row["cost"]
            requests[(row["user_id"], row["model"])] += row["requests"]
        daily.append({"day": day, "cost": round(sum(r["cost"] for r in rows), 6),
                      "requests": sum(r["requests"] for r in rows),
                      "by_user_and_model": [{**r, "cost": round(r["cost"], 6)} for r in rows]})
    total = sum(per_user.values())
    return {
        "from": min(days) if days else None,
        "to": max(days) if days else None,
        "total_cost": round(total, 6),
        "days": daily,
        "spend_by_user": {u: round(c, 6) for u, c in per_user.most_common()},
        "spend_by_model": {m: round(c, 6) for m, c in per_model.most_common()},
        "top_cost_drivers": [
            {"user_id": u, "model": m, "cost": round(c, 6), "requests": requests[(u, m)],
             "share": round(100 * c / total, 2) if total else 0.0}
            for (u, m), c in pairs.most_common(top)
        ],
    }
