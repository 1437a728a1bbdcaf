"""The control endpoints tests use to set faults and read the attempt log.

    GET    /_sandbox/faults              {"rules": [rule, ...]}
    POST   /_sandbox/faults              {"model": "<name>|*", "fault": "<kind>", "count": n?, <params>} -> 201 rule
    DELETE /_sandbox/faults              {"cleared": n}
    GET    /_sandbox/attempts[?model=m]  {"attempts": [attempt, ...]} in arrival order
    DELETE /_sandbox/attempts            {"cleared": n}
    GET    /_sandbox/batches[?model=m]   {"batches": [{"id", "api", "model", "items", "state"}, ...]}
                                         every provider batch made, in creation order
    POST   /_sandbox/reset               faults, attempts and the prompt cache cleared
"""

from __future__ import annotations

from aiohttp import web

from sandbox.fault_rules import rule_from_json
from sandbox.state import STATE_KEY


async def list_faults(request: web.Request) -> web.Response:
    return web.json_response({"rules": [rule.as_dict() for rule in request.app[STATE_KEY].rules.all()]})


async def add_fault(request: web.Request) -> web.Response:
    try:
        model, fault, count = rule_from_json(await request.json())
    except ValueError as exc:  # not JSON, or a FaultSyntaxError
        return web.json_response({"error": str(exc)}, status=400)
    rule = request.app[STATE_KEY].rules.add(model, fault, count)
    return web.json_response(rule.as_dict(), status=201)


async def clear_faults(request: web.Request) -> web.Response:
    return web.json_response({"cleared": request.app[STATE_KEY].rules.clear()})


async def list_attempts(request: web.Request) -> web.Response:
    attempts = request.app[STATE_KEY].attempts.all(request.query.get("model"))
    return web.json_response({"attempts": [a.as_dict() for a in attempts]})


async def clear_attempts(request: web.Request) -> web.Response:
    return web.json_response({"cleared": request.app[STATE_KEY].attempts.clear()})


async def list_batches(request: web.Request) -> web.Response:
    model = request.query.get("model")
    batches = [{"id": job.id, "api": job.api, "model": job.items[0].model if job.items else None,
                "items": len(job.items), "state": job.state} for job in request.app[STATE_KEY].batches.all()]
    return web.json_response({"batches": [b for b in batches if model is None or b["model"] == model]})


async def reset(request: web.Request) -> web.Response:
    request.app[STATE_KEY].reset()
    return web.json_response({"reset": True})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/_sandbox/faults", list_faults)
    router.add_post("/_sandbox/faults", add_fault)
    router.add_delete("/_sandbox/faults", clear_faults)
    router.add_get("/_sandbox/attempts", list_attempts)
    router.add_delete("/_sandbox/attempts", clear_attempts)
    router.add_get("/_sandbox/batches", list_batches)
    router.add_post("/_sandbox/reset", reset)
