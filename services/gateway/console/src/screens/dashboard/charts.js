// Chart.js for the dashboard: only the bar chart's pieces are registered (a small bundle).
// Each chart is a canvas with role="img" and an aria-label that says its numbers; the
// panels show the same numbers in a table as well.
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  Tooltip,
} from "chart.js";
import { h } from "../../core/dom.js";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

// the console's own colours (enough contrast on white)
export const COLOURS = ["#0b5cad", "#1e6b34", "#8a5300", "#5b2a86"];

/** A bar chart in a .chart-box: returns {box, update(labels, datasets, summary)}. */
export function barChart({ stacked = false } = {}) {
  const canvas = h("canvas", { role: "img", "aria-label": "" });
  const box = h("div", { class: "chart-box" }, canvas);
  let chart = null;
  function update(labels, datasets, summary) {
    canvas.setAttribute("aria-label", summary);
    const data = {
      labels,
      datasets: datasets.map((d, i) => ({
        ...d,
        backgroundColor: COLOURS[i % COLOURS.length],
        maxBarThickness: 56,
      })),
    };
    if (chart) {
      chart.data = data;
      chart.update();
      return;
    }
    chart = new Chart(canvas, {
      type: "bar",
      data,
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: { legend: { display: datasets.length > 1, position: "bottom" } },
        scales: {
          x: { stacked },
          y: { stacked, beginAtZero: true, ticks: { precision: 0 } },
        },
      },
    });
  }
  function destroy() {
    chart?.destroy();
    chart = null;
  }
  return { box, update, destroy };
}
