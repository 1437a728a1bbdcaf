// Models: per model and provider over a window, from GET /analytics/models.
import { get, query } from "./api.js";
import { colour, draw } from "./charts.js";
import { $, fillTable, money, percent, seconds, setState } from "./dom.js";

const COLUMNS = [
  { key: "model", label: "Model" },
  { key: "provider", label: "Provider" },
  { key: "requests", label: "Requests" },
  { key: "success_rate", label: "Success", show: percent },
  { key: "failures", label: "Failures by class", value: (m) => m.failures,
    show: (n, m) => Object.entries(m.failures_by_class).map(([k, v]) => `${k} ${v}`).join(", ") || "–" },
  { key: "latency_p50", label: "p50", value: (m) => m.latency.p50, show: seconds },
  { key: "latency_p95", label: "p95", value: (m) => m.latency.p95, show: seconds },
  { key: "ttft_p50", label: "TTFT p50", value: (m) => m.time_to_first_token.p50, show: seconds },
  { key: "ttft_p95", label: "TTFT p95", value: (m) => m.time_to_first_token.p95, show: seconds },
  { key: "cost", label: "Cost", show: money },
  { key: "cost_per_1k_tokens", label: "Per 1K tokens", show: money },
  { key: "fallbacks", label: "Fallbacks" },
  { key: "circuit", label: "Circuit", show: (c) => c || "closed" },
];

export async function show(view) {
  const window_ = $("#models-window").value;
  setState(view, "loading", "Loading model figures…");
  const report = await get("/analytics/models" + query({ window: window_ }));
  const used = report.models.filter((m) => m.requests > 0);
  setState(view, used.length ? "" : "empty",
    used.length ? "" : "No model has been called in this window yet: send a request (Try it) and come back.");
  charts(used);
  fillTable($("#models-table"), COLUMNS, report.models, (m) => m.model);
}

function charts(models) {
  const labels = models.map((m) => m.model);
  draw("models-requests-chart", "bar", {
    labels,
    datasets: [
      { label: "requests", data: models.map((m) => m.requests), backgroundColor: colour(0) },
      { label: "successes", data: models.map((m) => m.successes), backgroundColor: colour(1) },
      { label: "fallbacks", data: models.map((m) => m.fallbacks), backgroundColor: colour(3) },
    ],
  });
  const series = [["latency p50", (m) => m.latency.p50], ["latency p95", (m) => m.latency.p95],
    ["TTFT p50", (m) => m.time_to_first_token.p50], ["TTFT p95", (m) => m.time_to_first_token.p95]];
  draw("models-latency-chart", "bar", {
    labels,
    datasets: series.map(([label, value], i) => ({ label, data: models.map(value), backgroundColor: colour(i + 4) })),
  });
}

export function bind(refresh) {
  $("#models-window").addEventListener("change", refresh);
}
