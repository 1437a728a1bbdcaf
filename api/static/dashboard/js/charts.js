// Chart.js (vendored, loaded as window.Chart): one chart per canvas, updated in place.
const PALETTE = ["#2563eb", "#16a34a", "#dc2626", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#475569"];

export const colour = (index) => PALETTE[index % PALETTE.length];

export function draw(canvasId, type, data, options = {}) {
  const existing = window.Chart.getChart(canvasId);
  if (existing && existing.config.type === type) {
    existing.data = data;
    existing.update("none");
    return existing;
  }
  existing?.destroy();
  return new window.Chart(document.getElementById(canvasId), {
    type, data,
    options: { responsive: true, maintainAspectRatio: false, animation: false, ...options },
  });
}
