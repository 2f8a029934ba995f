// Kube Sentinel's dashboard: live updates over Server-Sent Events. Served from /static/ (the
// CSP allows no inline script). Everything received is written with textContent, never as
// HTML: log text and audit details are attacker-controlled.
"use strict";
(function () {
  const base = document.body.dataset.base || "";
  const live = document.getElementById("live");
  const counter = document.getElementById("updates");
  let received = 0;

  function bump() {
    received += 1;
    if (counter) counter.textContent = String(received);
  }

  async function refreshStats() {
    const cells = document.querySelectorAll("[data-stat]");
    if (cells.length === 0) return;
    const resp = await fetch(base + "/api/stats", { credentials: "same-origin" });
    if (!resp.ok) return;
    const stats = await resp.json();
    for (const cell of cells) {
      let value = stats;
      for (const key of cell.dataset.stat.split(".")) value = value == null ? undefined : value[key];
      cell.textContent = String(value === undefined ? 0 : value);
    }
  }

  function addAudit(entry) {
    const feed = document.getElementById("feed");
    if (!feed) return;
    const li = document.createElement("li");
    li.textContent = [entry.outcome, entry.action, entry.rule, entry.owner, entry.detail]
      .filter(Boolean).join(" · ");
    feed.prepend(li);
    while (feed.children.length > 20) feed.lastElementChild.remove();
  }

  const source = new EventSource(base + "/api/events");
  source.onopen = function () { live.textContent = "live"; live.classList.add("on"); };
  source.onerror = function () { live.textContent = "offline"; live.classList.remove("on"); };
  source.addEventListener("page", function () { bump(); refreshStats(); });
  source.addEventListener("audit", function (e) { bump(); addAudit(JSON.parse(e.data)); });
  source.addEventListener("settings", function () { bump(); });
  source.addEventListener("resync", function () { refreshStats(); });
})();
