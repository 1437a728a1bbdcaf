"""Economy batches: batch items answered through their provider's batch API, at batch prices.

An economy item (`ChatJob.economy`) is routed by a worker like any item, with the same
strategies, over the catalog at batch prices (`Catalog.at_batch_prices`), and its worst case is
reserved at the chosen model's batch price, held for the completion window (WINDOW). Then,
instead of a call, it is parked (`park`; orchestrator/store/provider_batches.py). A model whose
provider has no batch API (a custom server) is run at once, re-admitted at the standard price.

The fleet's periodic pass (`run`, on the monitor's pass: workers/provider_batches.py), one
worker at a time, submits what is parked, per model, as one provider batch (at most MAX_ITEMS
calls), then looks at every provider batch not collected yet: it cancels it upstream when a
batch of its items was cancelled, and once it has ended reads each item's outcome:

- an answer completes the item through the ledger, billed at the model's batch price;
- an error or no answer at all (the batch expired, or was cancelled) ends the item `cancelled`
  when its batch was cancelled; otherwise, failed when its batch asked for that
  (`economy: fail`) or when the error would fail on any model (a bad request, a content
  filter); otherwise the item goes back to the standard path: its reservation released and its
  task sent again as a standard item, to be routed and reserved again at the standard price.

A submission the provider refuses for a passing reason (a rate limit, an outage) is tried again
at the next pass; for any other reason, its items take the path of a failed item. A worker that
dies between the provider's acceptance of a batch and its record here leaves the items parked:
the next pass submits them again, and the provider runs them twice (each item ends, and is
billed, once: the ledger's terminal-once rule).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.config import Settings
from orchestrator.core.catalog import Catalog, ModelCapabilities
from orchestrator.core.errors import ErrorKind, ProviderError
from orchestrator.core.job import END_FAILED, TERMINAL, ChatJob, Failure
from orchestrator.core.retry_policy import Chain
from orchestrator.core.types import ChatRequest, ChatResponse
from orchestrator.execution.attempt import attempt_request
from orchestrator.execution.settlement import Settlement, exhausted
from orchestrator.providers.batch_api import BatchApi, ItemResult
from orchestrator.providers.registry import ProviderRegistry
from orchestrator.store.batches import CANCELLED
from orchestrator.store.budgets import Budgets
from orchestrator.store.provider_batches import ParkedItem, ProviderBatches

log = logging.getLogger(__name__)

WINDOW = 24 * 3600.0  # the providers' completion window: an economy item's time budget, and its hold's
MAX_ITEMS = 10_000  # calls a provider batch is given at most
LOCK_SECONDS = 600.0  # a pass that dies frees the fleet's economy lock after this long

Resend = Callable[[list[tuple[str, ChatJob]]], None]  # items (id, job) to put on the batch queue again


@dataclass
class Parked:
    """An economy item as the pass handles it."""

    request_id: str
    job: ChatJob
    chain: Chain
    request: ChatRequest  # the call, its request id the item's (the provider batch's custom id)
    batch_cancelled: bool


class Economy:
    def __init__(self, *, catalog: Catalog, providers: ProviderRegistry, store: ProviderBatches, budgets: Budgets,
                 settlement: Settlement, settings: Settings):
        self.catalog = catalog  # at batch prices
        self.providers, self.store, self.budgets = providers, store, budgets
        self.settlement, self.settings = settlement, settings

    def can_batch(self, model_name: str) -> bool:
        return self.catalog.has_batch_api(self.catalog.get(model_name))

    def park(self, request_id: str, chain: Chain) -> None:
        """The routed and reserved item waits for the next submission to its model's provider."""
        self.store.park(request_id, chain.current, chain.as_dict())

    def run(self, resend: Resend) -> None:
        """One pass: submit what is parked, collect what has ended; skipped while another
        worker's pass runs."""
        lock = self.store.lock(LOCK_SECONDS)
        if not lock.acquire():
            return
        try:
            self.submit(resend)
            self.collect(resend)
        finally:
            lock.release()

    # --- submission -------------------------------------------------------------------------

    def submit(self, resend: Resend) -> None:
        names = [m.model_name for m in self.catalog if self.catalog.has_batch_api(m)]
        for name, ids in self.store.pending(names, MAX_ITEMS).items():
            model = self.catalog.get(name)
            ready = self._ready(model, self.store.items(ids))
            self.store.unpark(name, [i for i in ids if i not in {item.request_id for item in ready}])
            if ready:
                self._submit(model, ready, resend)

    def _ready(self, model: ModelCapabilities, parked: list[ParkedItem]) -> list[Parked]:
        """The items still to run; those of a cancelled batch end cancelled here, those ended are left."""
        ready = []
        for item in self._readable(model, parked):
            if item.batch_cancelled:
                self.settlement.cancel_item(item.request_id, item.job, Failure.from_json(CANCELLED))
            else:
                ready.append(item)
        return ready

    def _submit(self, model: ModelCapabilities, items: list[Parked], resend: Resend) -> None:
        try:
            upstream_id = self._api(model).submit([item.request for item in items])
        except ProviderError as exc:
            if exc.kind.policy.retry_same:
                log.warning("economy: %s refused a batch of %d for now (%s); trying again at the next pass",
                            model.model_name, len(items), exc.message)
                return
            log.warning("economy: %s refused a batch of %d: %s", model.model_name, len(items), exc.message)
            self.store.unpark(model.model_name, [item.request_id for item in items])
            self._end_all(model, items, {item.request_id: exc for item in items}, resend)
            return
        self.store.submitted(upstream_id, model.provider, model.model_name, [item.request_id for item in items])
        log.info("economy: %d items submitted to %s as %s", len(items), model.model_name, upstream_id)

    # --- collection -------------------------------------------------------------------------

    def collect(self, resend: Resend) -> None:
        for upstream in self.store.open_upstreams():
            try:
                self._collect(upstream, resend)
            except ProviderError as exc:
                log.warning("economy: provider batch %s could not be read (%s); again at the next pass",
                            upstream["id"], exc.message)
            except Exception:  # one batch's bug must not hold up the others
                log.exception("economy: provider batch %s could not be collected; again at the next pass",
                              upstream["id"])

    def _collect(self, upstream: dict, resend: Resend) -> None:
        upstream_id, model = upstream["id"], self.catalog.get(upstream["model"])
        api = self._api(model)
        items = self._readable(model, self.store.items(self.store.request_ids(upstream_id)))
        if upstream["cancel_sent_at"] is None and any(item.batch_cancelled for item in items):
            api.cancel(upstream_id)
            self.store.update(upstream_id, cancel_sent_at=time.time())
        state = api.state(upstream_id)
        if not state.ended:
            self.store.update(upstream_id, status=state.status)
            return
        self.store.update(upstream_id, status=state.status, ended_at=time.time())
        results = api.results(upstream_id, {item.request_id: item.request for item in items})
        self._end_all(model, items, results, resend)
        self.store.collected(upstream_id, state.status)
        log.info("economy: provider batch %s (%s) collected: %d items", upstream_id, state.status, len(items))

    def _end_all(self, model: ModelCapabilities, items: list[Parked], results: dict[str, ItemResult],
                 resend: Resend) -> None:
        again = [item for item in items if not self._ended(model, item, results.get(item.request_id))]
        if again:
            for item in again:
                self.budgets.release(item.job.owner, item.request_id)
            self.store.back_to_standard([item.request_id for item in again])
            resend([(item.request_id, dataclasses.replace(item.job, economy=None)) for item in again])

    def _ended(self, model: ModelCapabilities, item: Parked, result: ItemResult) -> bool:
        """End the item with its outcome; False when it goes back to the standard path instead."""
        if isinstance(result, ChatResponse):
            cost = model.cost(result.usage) if self.settings.cost_tracking_enabled else 0.0
            item.chain.record(model.model_name, model.provider, None, result.latency)
            self.settlement.complete(item.request_id, item.job, item.chain, result, cost)
            return True
        if item.batch_cancelled:
            self.settlement.cancel_item(item.request_id, item.job, Failure.from_json(CANCELLED))
            return True
        error = result or ProviderError(ErrorKind.TIMEOUT, "the provider batch ended without running it (expired)",
                                        provider=model.provider, model=model.model_name)
        if item.job.economy != END_FAILED and error.kind.policy.fallback:
            return False
        item.chain.record(model.model_name, model.provider, error, 0.0)
        self.settlement.fail(item.request_id, item.job, exhausted(
            item.chain, error.kind.policy.http_status, error.kind.value,
            f"{error.provider} {error.model} (provider batch): {error.message}"))
        return True

    # --- items ------------------------------------------------------------------------------

    def _readable(self, model: ModelCapabilities, parked: list[ParkedItem]) -> list[Parked]:
        """The items not ended yet, with their job, chain and call."""
        items = []
        for item in parked:
            if item.status in TERMINAL or item.payload is None or item.chain is None:
                continue
            job, chain = ChatJob.from_json(item.payload), Chain.from_dict(item.chain)
            request = attempt_request(job.chat_request(self.settings), model, chain, item.request_id)
            items.append(Parked(item.request_id, job, chain, request, item.batch_cancelled))
        return items

    def _api(self, model: ModelCapabilities) -> BatchApi:
        return self.providers.batch_api(model)
