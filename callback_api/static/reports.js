// The Reports page's charts, drawn with Chart.js (served from node_modules under /vendor/chart.js/)
// from the figures the page embeds as JSON (#report-data); the tables beside them hold the same
// numbers for screen readers and for copying.
(function () {
  "use strict";
  var source = document.getElementById("report-data");
  if (!source || typeof Chart === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var labels = data.labels;
  var blue = "#1f5fa8", orange = "#d9822b", green = "#2e7d32", grey = "#8a8f98";

  function draw(id, config) {
    var canvas = document.getElementById(id);
    if (!canvas) { return; }
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options || {});
    canvas.chart = new Chart(canvas, config);
    canvas.dataset.drawn = "true";
  }

  draw("chart-trend", {
    type: "bar",
    data: {
      labels: data.months,
      datasets: [
        { type: "bar", label: labels["Actions"], data: data.actions, backgroundColor: blue, yAxisID: "y" },
        { type: "line", label: labels["Solved through Burgernet (%)"], data: data.solved_percent,
          borderColor: green, backgroundColor: green, yAxisID: "percent", spanGaps: true },
        { type: "line", label: labels["Calls per 1,000 alerted"], data: data.calls_per_1000,
          borderColor: orange, backgroundColor: orange, yAxisID: "percent", spanGaps: true }
      ]
    },
    options: {
      scales: {
        y: { beginAtZero: true, position: "left" },
        percent: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false } }
      }
    }
  });

  var hours = [];
  for (var h = 0; h < 24; h++) { hours.push((h < 10 ? "0" : "") + h + ":00"); }
  draw("chart-hours", {
    type: "bar",
    data: {
      labels: hours,
      datasets: [
        { label: labels["Calls"], data: data.hours.map(function (n, i) { return n - data.hours_without_action[i]; }),
          backgroundColor: blue, stack: "calls" },
        { label: labels["without an action"], data: data.hours_without_action, backgroundColor: grey, stack: "calls" }
      ]
    },
    options: { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } }
  });

  draw("chart-regions", {
    type: "bar",
    data: { labels: data.regions, datasets: [{ label: labels["Actions"], data: data.region_totals, backgroundColor: blue }] },
    options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true } } }
  });

  draw("chart-speed", {
    type: "bar",
    data: {
      labels: data.speed_channels,
      datasets: [
        { label: labels["50 % reached (median s)"], data: data.speed_t50, backgroundColor: green },
        { label: labels["90 % reached (median s)"], data: data.speed_t90, backgroundColor: blue },
        { label: labels["100 % reached (median s)"], data: data.speed_t100, backgroundColor: orange }
      ]
    },
    options: { scales: { y: { beginAtZero: true } } }
  });
})();
