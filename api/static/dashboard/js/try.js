// Try it: one chat request, with routing made visible: POST /chat/route for the ranked
// candidates, then POST /chat/execute for the answer and the decision it ran under.
import { post } from "./api.js";
import { $, el, fillTable, money, seconds, setState } from "./dom.js";

export function bind(view) {
  $("#try-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { message: $("#try-message").value, strategy: $("#try-strategy").value };
    setState(view, "loading", "Routing and calling the model…");
    $("#try-result").hidden = true;
    try {
      const [route, result] = [await post("/chat/route", body), await post("/chat/execute", body)];
      render(route, result);
      setState(view, "");
    } catch (e) {
      setState(view, "error", `The request failed: ${e.message}`);
    }
  });
}

function render(route, result) {
  const decision = result.routing_decision;
  $("#try-answer").textContent = result.response.content;
  const facts = [["Model used", result.model_used], ["Provider", result.response.provider],
    ["Cost", money(result.response.cost)], ["Estimated", money(decision.estimated_cost)],
    ["Latency", seconds(result.response.latency)], ["Attempts", result.attempts.length],
    ["Complexity", decision.analysis?.complexity ?? "–"], ["Request id", result.request_id]];
  $("#try-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { "data-fact": k, text: String(v) })]));
  $("#try-reason").textContent = decision.reasoning;
  fillTable($("#try-candidates"), [
    { key: "model", label: "Candidate" }, { key: "provider", label: "Provider" },
    { key: "predicted_quality", label: "Predicted quality", show: (q) => (q ?? "–").toString() },
    { key: "estimated_cost", label: "Cost", show: money }, { key: "estimated_time", label: "Time", show: seconds },
    { key: "score", label: "Score" },
  ], route.candidates || [], (c) => c.model);
  $("#try-result").hidden = false;
}
