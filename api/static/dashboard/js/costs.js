// Costs: spend per day per model (GET /analytics/spend: the caller's, the admin's pick or
// everyone's), the top cost drivers, and recent requests' estimated against billed cost
// (GET /analytics/requests).
import { get, query } from "./api.js";
import { colour, draw } from "./charts.js";
import { $, fillTable, money, setState, when } from "./dom.js";

export async function show(view, who) {
  setState(view, "loading", "Loading spend…");
  const userId = who.admin ? who.subject : null;
  const [spend, recent] = await Promise.all([
    get("/analytics/spend" + query({ user_id: userId, days: $("#costs-days").value })),
    get("/analytics/requests" + query({ user_id: userId || (who.admin ? who.me : null), limit: 50 })),
  ]);
  setState(view, spend.total_cost || recent.requests.length ? "" : "empty",
    "Nothing spent in these days yet: send a request (Try it) and come back.");
  $("#costs-total").textContent = money(spend.total_cost);
  daily(spend.days);
  drivers(spend.top_cost_drivers);
  requests(recent.requests);
}

function daily(days) { // oldest first
  const models = [...new Set(days.flatMap((d) => d.by_user_and_model.map((r) => r.model)))];
  const cost = (day, model) => day.by_user_and_model.filter((r) => r.model === model).reduce((s, r) => s + r.cost, 0);
  draw("costs-daily-chart", "bar", {
    labels: days.map((d) => d.day),
    datasets: models.map((model, i) => ({ label: model, backgroundColor: colour(i), data: days.map((d) => cost(d, model)) })),
  }, { scales: { x: { stacked: true }, y: { stacked: true } } });
}

function drivers(list) {
  fillTable($("#costs-drivers"), [
    { key: "user_id", label: "User" }, { key: "model", label: "Model" }, { key: "requests", label: "Requests" },
    { key: "cost", label: "Cost", show: money }, { key: "share", label: "Share", show: (s) => `${s}%` },
  ], list, (d) => `${d.user_id}|${d.model}`);
}

function requests(list) {
  const answered = list.filter((r) => r.cost !== null).reverse();
  draw("costs-estimate-chart", "bar", {
    labels: answered.map((r) => r.request_id.slice(-6)),
    datasets: [
      { label: "estimated", data: answered.map((r) => r.estimated_cost), backgroundColor: colour(8) },
      { label: "billed", data: answered.map((r) => r.cost), backgroundColor: colour(0) },
    ],
  });
  fillTable($("#costs-recent"), [
    { key: "created_at", label: "When", show: when }, { key: "status", label: "Status" },
    { key: "model", label: "Model" }, { key: "complexity", label: "Complexity" },
    { key: "estimated_cost", label: "Estimated", show: money }, { key: "cost", label: "Billed", show: money },
  ], list, (r) => r.request_id);
}

export function bind(refresh) {
  $("#costs-days").addEventListener("change", refresh);
}
