// Users: one user's month (GET /analytics/user, /analytics/spend), or for the admin with
// "All users" every user's spend (GET /admin/users, /analytics/spend).
import { get, query } from "./api.js";
import { colour, draw } from "./charts.js";
import { $, el, fillTable, money, setState } from "./dom.js";

export async function show(view, who) {
  setState(view, "loading", "Loading the user's month…");
  const all = who.admin && !who.subject;
  $("#users-one").hidden = all;
  $("#users-all").hidden = !all;
  if (all) return showAll(view);
  const userId = who.admin ? who.subject : null;
  const [report, spend] = await Promise.all([
    get("/analytics/user" + query({ user_id: userId })),
    get("/analytics/spend" + query({ user_id: userId, days: 31 })),
  ]);
  const m = report.metrics;
  setState(view, m.requests ? "" : "empty", m.requests ? "" : `No request from ${report.user_id} this month yet.`);
  budget(report);
  spendChart(report, spend);
  requestsChart(m.usage_by_complexity);
  preferences(m);
  recommendations(report.recommendations);
  ratings(report.ratings_given);
}

function budget(report) {
  const m = report.metrics;
  $("#budget-text").textContent = `${report.user_id}: ${money(m.current_spend)} of ${money(m.monthly_budget)} spent in ` +
    `${report.month} (${m.budget_utilization.toFixed(2)}%), ${money(m.reserved)} held by requests in flight`;
  $("#budget-fill").style.width = `${Math.min(100, m.budget_utilization)}%`;
  $("#budget-meter").dataset.level = m.budget_utilization >= 100 ? "over" : m.budget_utilization >= 80 ? "high" : "ok";
}

function spendChart(report, spend) {
  const month = report.month;
  const days = spend.days.filter((d) => d.day.startsWith(month));
  let total = 0;
  const cumulative = days.map((d) => (total += d.cost));
  const budget = report.metrics.monthly_budget;
  const line = (share, i) => ({
    label: `${share}% of budget`, data: days.map(() => budget * share / 100), borderColor: colour(i + 2),
    borderDash: [6, 4], pointRadius: 0, fill: false,
  });
  draw("users-spend-chart", "line", {
    labels: days.map((d) => d.day),
    datasets: [{ label: "spent", data: cumulative, borderColor: colour(0), fill: false }, line(50, 1), line(80, 2), line(100, 3)],
  });
}

function requestsChart(byLevel) {
  const levels = Object.keys(byLevel);
  const models = [...new Set(levels.flatMap((l) => Object.keys(byLevel[l].models)))];
  draw("users-requests-chart", "bar", {
    labels: levels,
    datasets: models.map((model, i) => ({
      label: model, backgroundColor: colour(i), data: levels.map((l) => byLevel[l].models[model]?.requests ?? 0),
    })),
  }, { scales: { x: { stacked: true }, y: { stacked: true } } });
}

function preferences(m) {
  const levels = Object.keys(m.learned_preferred_models).concat(Object.keys(m.explicit_preferred_models));
  const rows = [...new Set(levels)].map((level) => el("li", { "data-level": level },
    el("strong", { text: `${level}: ` }),
    (m.preferred_models[level] || []).join(", ") || "no preference",
    m.learned_preferred_models[level]
      ? el("span", { class: "muted", text: " (learned: " + m.learned_preferred_models[level]
        .map((s) => `${s.model} ${s.score}`).join(", ") + ")" })
      : null));
  $("#users-preferences").replaceChildren(rows.length ? el("ul", {}, ...rows)
    : el("p", { class: "muted", text: "Nothing learned yet: answers at the first attempt and ratings teach it." }));
}

function recommendations(list) {
  $("#users-recommendations").replaceChildren(...(list.length ? list.map((r) => el("li", { "data-kind": r.kind },
    el("strong", { text: money(r.savings) }), " ", r.message))
    : [el("li", { class: "muted", text: "No recommendation: nothing to save this month." })]));
}

function ratings(list) {
  const shown = (r) => r.rating ?? (r.thumbs === "up" ? "👍" : "👎");
  fillTable($("#users-ratings"), [
    { key: "time", label: "When", show: (t) => new Date(t * 1000).toLocaleString() },
    { key: "model", label: "Model" },
    { key: "task_type", label: "Task" },
    { key: "rating", label: "Rating", value: shown },
    { key: "comment", label: "Comment" },
  ], list, (r) => r.request_id);
}

async function showAll(view) {
  const [users, spend] = await Promise.all([get("/admin/users"), get("/analytics/spend" + query({ days: 31 }))]);
  setState(view, users.length ? "" : "empty", users.length ? "" : "No user yet: create one with `orchestrator users create`.");
  fillTable($("#users-table"), [
    { key: "id", label: "User" },
    { key: "name", label: "Name" },
    { key: "monthly_budget", label: "Budget", show: money },
    { key: "spend", label: "Spent, 31 days", value: (u) => spend.spend_by_user[u.id] ?? 0, show: money },
  ], users, (u) => u.id);
}
