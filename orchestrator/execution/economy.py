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

The provider never runs an item twice. A submission is recorded before its provider is called
(its items `submitting`, under a new submission id), the provider batch is tagged with that id
(orchestrator/providers/batch_api.py), and the batch is recorded once the provider accepts it.
A submission still unrecorded when a later pass starts was left by a pass that died, or failed,
between the two, or whose call timed out or was refused for a passing reason (a rate limit, an
outage): the provider may have taken it all the same. Once SETTLE seconds old it is looked for
at its provider: its batch, when found, is recorded as if the call had answered; when not, its
items are parked again and submitted afresh in the same pass. A pass takes such a submission
over (`claim`) before looking, and records only what it owns, so that two passes never both
decide; and it renews the fleet's lock before each call, so that no other pass starts while the
call may still be running. A submission refused for any other reason ends its items as a
failed provider batch would. What this cannot see: a provider that takes a batch more than
SETTLE seconds after the call that sent it timed out (the look finds nothing, and the items go
again).
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from redis.lock import Lock

from orchestrator.config import Settings
from orchestrator.core.catalog import Catalog, ModelCapabilities
from orchestrator.core.errors import ErrorKind, ProviderError
from orchestrator.core.job import END_FAILED, TERMINAL, ChatJob, Failure
from orchestrator.core.retry_policy import Chain
from orchestrator.core.types import ChatRequest, ChatResponse
from orchestrator.execution.attempt import attempt_request
from orchestrator.execution.settlement import Settlement, exhausted
from orchestrator.providers.batch_api import BatchApi, ItemResult, Undecided
from orchestrator.providers.registry import ProviderRegistry
from orchestrator.store.batches import CANCELLED
from orchestrator.store.budgets import Budgets
from orchestrator.store.provider_batches import ParkedItem, ProviderBatches, Submission

log = logging.getLogger(__name__)

WINDOW = 24 * 3600.0  # the providers' completion window: an economy item's time budget, and its hold's
MAX_ITEMS = 10_000  # calls a provider batch is given at most
LOCK_SECONDS = 600.0  # a pass that dies frees the fleet's economy lock after this long
SETTLE = 10.0  # seconds before a submission left unrecorded is looked for: a batch just accepted is listed by then

Resend = Callable[[list[tuple[str, ChatJob]]], None]  # items (id, job) to put on the batch queue again


@dataclass(frozen=True)
class Pass:
    """One economy pass: its id (the owner of the submissions it makes or takes over) and the lock it holds."""

    lock: Lock
    resend: Resend
    id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)


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
            self.submit(Pass(lock, resend))
            self.collect(resend)
        finally:
            lock.release()

    # --- submission -------------------------------------------------------------------------

    def submit(self, run: Pass) -> None:
        self._settle_left(run)
        names = [m.model_name for m in self.catalog if self.catalog.has_batch_api(m)]
        for name, ids in self.store.pending(names, MAX_ITEMS).items():
            model = self.catalog.get(name)
            ready = self._ready(model, self.store.items(ids))
            self.store.unpark(name, [i for i in ids if i not in {item.request_id for item in ready}])
            if ready:
                self._submit(model, ready, run)

    def _ready(self, model: ModelCapabilities, parked: list[ParkedItem]) -> list[Parked]:
        """The items still to run; those of a cancelled batch end cancelled here, those ended are left."""
        ready = []
        for item in self._readable(model, parked):
            if item.batch_cancelled:
                self.settlement.cancel_item(item.request_id, item.job, Failure.from_json(CANCELLED))
            else:
                ready.append(item)
        return ready

    def _submit(self, model: ModelCapabilities, items: list[Parked], run: Pass) -> None:
        run.lock.reacquire()  # held for LOCK_SECONDS from now: far longer than the call may take
        submission = self.store.begin(model.provider, model.model_name, [item.request_id for item in items], run.id)
        try:
            upstream_id = self._api(model).submit([item.request for item in items], submission.id)
        except ProviderError as exc:
            if exc.kind.policy.retry_same or exc.kind is ErrorKind.TIMEOUT:  # it may have taken it all the same
                log.warning("economy: %s did not take a batch of %d for now (%s); looked for at a later pass",
                            model.model_name, len(items), exc.message)
                return
            log.warning("economy: %s refused a batch of %d: %s", model.model_name, len(items), exc.message)
            self.store.release(submission, run.id)  # parked again, then unparked: they end below
            self.store.unpark(model.model_name, submission.request_ids)
            self._end_all(model, items, {item.request_id: exc for item in items}, run.resend)
            return
        self._record(submission, run, upstream_id)

    def _settle_left(self, run: Pass) -> None:
        """Each submission another pass left unrecorded, taken over and looked for at its provider."""
        for submission in self.store.left(run.id, time.time() - SETTLE):
            if not self.store.claim(submission, run.id):
                continue
            try:
                self._look_for(submission, run)
            except Exception:  # one submission's bug (its model gone from the catalog) must not hold up the others
                log.exception("economy: submission %s could not be looked for; again at the next pass", submission.id)

    def _look_for(self, submission: Submission, run: Pass) -> None:
        """Adopt the submission's provider batch, or park its items again when the provider does
        not have it (they are submitted afresh in this pass)."""
        model = self.catalog.get(submission.model)
        known = {upstream["id"] for upstream in self.store.open_upstreams()}
        try:
            upstream_id = self._api(model).find(submission.id, submission.request_ids, submission.at, known)
        except (ProviderError, Undecided) as exc:
            log.warning("economy: submission %s to %s could not be looked for (%s); again at the next pass",
                        submission.id, model.model_name, exc)
            return
        if upstream_id is not None:
            self._record(submission, run, upstream_id)
        elif self.store.release(submission, run.id):
            log.info("economy: submission %s never reached %s: its %d items are parked again",
                     submission.id, model.model_name, len(submission.request_ids))

    def _record(self, submission: Submission, run: Pass, upstream_id: str) -> None:
        if self.store.accepted(submission, run.id, upstream_id):
            log.info("economy: %d items submitted to %s as %s (submission %s)", len(submission.request_ids),
                     submission.model, upstream_id, submission.id)
        else:
            log.warning("economy: submission %s (%s) was taken over by another pass", submission.id, upstream_id)

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
