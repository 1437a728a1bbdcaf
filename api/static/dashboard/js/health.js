// Health: GET /health (workers, queues, streams, Redis, providers), the caller's batches
// (GET /batch; the admin: every unfinished one) with a cancel button, and the alerts feed
// (GET /alerts). Polled every EVERY seconds while the view is shown.
import { get, post } from "./api.js";
import { $, el, fillTable, money, setState, when } from "./dom.js";

export const EVERY = 3;
let timer = null;

export async function show(view) {
  stop();
  $("#health-every").textContent = EVERY;
  await refresh(view);
  timer = setInterval(() => refresh(view).catch((e) => setState(view, "error", `Could not refresh: ${e.message}`)),
    EVERY * 1000);
}

export function stop() {
  clearInterval(timer);
  timer = null;
}

async function refresh(view) {
  const [health, batches, alerts] = await Promise.all([get("/health"), get("/batch"), get("/alerts?limit=20")]);
  setState(view, "");
  status(health);
  workers(health.workers);
  queues(health.queues);
  now(health);
  providers(health.providers);
  batchList(batches.batches, view);
  alertFeed(alerts.alerts);
  $("#health-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

function status(health) {
  const badge = $("#health-status");
  badge.textContent = health.status;
  badge.dataset.status = health.status;
  $("#health-problems").replaceChildren(
    ...health.reasons.map((r) => el("li", { class: "error", text: r })),
    ...health.warnings.map((w) => el("li", { class: "warning", text: w })));
}

function workers(fleet) {
  const answering = fleet.answering || {};
  fillTable($("#health-workers"), [
    { key: "name", label: "Worker" },
    { key: "ping", label: "Ping", show: (p) => (p ? "answers" : "silent") },
    { key: "active_tasks", label: "Tasks in hand" },
  ], fleet.alive.map((name) => ({ name, ...(answering[name] || { ping: null, active_tasks: null }) })), (w) => w.name);
}

function queues(depths) {
  const levels = [...new Set(Object.values(depths).flatMap((d) => Object.keys(d)))].sort();
  const rows = Object.entries(depths).map(([queue, byLevel]) => ({ queue, ...byLevel }));
  fillTable($("#health-queues"), [{ key: "queue", label: "Lane" },
    ...levels.map((level) => ({ key: level, label: `level ${level}` }))], rows, (r) => r.queue);
}

function now(health) {
  const facts = [
    ["Redis", health.redis.ok ? `answers in ${health.redis.latency_ms} ms` : `down (${health.redis.error})`],
    ["Live workers", health.workers.count],
    ["Open streams", health.streams.open ?? "–"],
    ["Batches queued", health.batches.queued ?? "–"],
    ["Batches running", health.batches.running ?? "–"],
  ];
  $("#health-now").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })]));
}

function providers(all) {
  fillTable($("#health-providers"), [
    { key: "name", label: "Provider" },
    { key: "kind", label: "Kind", show: (k, p) => `${k}${p.sandbox ? " (sandbox)" : ""}` },
    { key: "circuit", label: "Circuit", show: (c) => c || "unavailable" },
    { key: "last_error", label: "Last error", show: (e, p) => (e ? `${e} at ${when(p.last_error_at)}` : "–") },
  ], Object.entries(all).map(([name, p]) => ({ name, ...p })), (p) => p.name);
}

function batchList(batches, view) {
  $("#batches-empty").textContent = batches.length ? "" : "No batch: submit one with POST /batch/submit.";
  $("#health-batches").replaceChildren(...batches.map((b) => {
    const ended = b.total - b.counts.queued - b.counts.running;
    const open = b.status === "queued" || b.status === "running";
    return el("li", { "data-batch": b.batch_id, "data-status": b.status },
      el("div", {}, el("code", { text: b.batch_id }), ` ${b.owner} · ${b.status} · ${ended}/${b.total} · ${money(b.cost)}`),
      el("progress", { max: b.total, value: ended, "aria-label": `progress of ${b.batch_id}` }),
      open ? el("button", { type: "button", class: "cancel", onclick: () => cancel(b.batch_id, view) }, "Cancel") : null);
  }));
}

async function cancel(batchId, view) {
  try {
    await post(`/batch/${encodeURIComponent(batchId)}/cancel`);
    await refresh(view);
  } catch (e) {
    setState(view, "error", `Could not cancel ${batchId}: ${e.message}`);
  }
}

function alertFeed(alerts) {
  $("#alerts-empty").textContent = alerts.length ? "" : "No alert.";
  $("#health-alerts").replaceChildren(...alerts.map((a) => el("li", { "data-severity": a.severity, "data-kind": a.kind },
    el("time", { text: when(a.time) }), " ", el("strong", { text: a.kind }), " ", a.message)));
}
