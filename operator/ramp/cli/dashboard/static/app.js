// Ramp dashboard: live updates (server-sent events), plots (uPlot), action buttons.
// The pages are rendered by the server and readable without this script; it makes them live.
"use strict";

(function () {
  const body = document.body;
  const csrf = document.querySelector('meta[name="ramp-csrf"]').content;
  const live = document.getElementById("live");
  const VERDICT_COLOR = { Pass: "#1a7f37", Fail: "#cf222e", Inconclusive: "#9a6700", Error: "#8250df" };
  let updates = 0;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") node.textContent = String(v);
      else node.setAttribute(k, String(v));
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }

  function setLive(text, ok) {
    live.textContent = text;
    live.className = "live " + (ok ? "live-on" : "live-off");
  }

  function stream(url, handlers) {
    const source = new EventSource(url);
    source.onopen = () => setLive("live", true);
    source.onerror = () => setLive("reconnecting…", false);
    for (const [name, fn] of Object.entries(handlers)) {
      source.addEventListener(name, (ev) => {
        updates += 1;
        body.dataset.updates = String(updates);
        fn(JSON.parse(ev.data));
      });
    }
    return source;
  }

  function phase(p) {
    return el("span", { class: "phase phase-" + p, text: p });
  }

  // -- the list -------------------------------------------------------------------------

  function listRow(r) {
    const href = "/rollouts/" + encodeURIComponent(r.namespace) + "/" + encodeURIComponent(r.name);
    const cells = {
      namespace: r.namespace,
      name: el("a", { href: href, text: r.name }),
      phase: phase(r.phase),
      strategy: r.strategy,
      step: r.step,
      weight: r.desiredWeight + "% / " + r.actualWeight + "%",
      ready: r.ready,
      message: r.message,
    };
    const tr = el("tr", { "data-key": r.namespace + "/" + r.name });
    for (const col of ["namespace", "name", "phase", "strategy", "step", "weight", "ready", "message"]) {
      tr.append(el("td", { "data-col": col }, cells[col]));
    }
    return tr;
  }

  function startList() {
    const ns = body.dataset.namespace || "";
    const tbody = document.querySelector("#rollouts tbody");
    stream("/api/stream" + (ns ? "?namespace=" + encodeURIComponent(ns) : ""), {
      rollouts: (data) => {
        tbody.replaceChildren(...data.rollouts.map(listRow));
        const empty = document.getElementById("empty");
        if (empty) empty.hidden = data.rollouts.length > 0;
        if (data.error) setLive("watch error: " + data.error, false);
      },
    });
  }

  // -- the detail page --------------------------------------------------------------------

  const charts = {};

  function chartWidth(container) {
    return Math.max(320, Math.min(900, container.clientWidth || 640));
  }

  function drawSplit(split) {
    const box = document.getElementById("split-chart");
    box.dataset.points = String(split.length);
    if (charts.split) charts.split.destroy();
    if (!split.length || typeof uPlot === "undefined") return;
    const xs = split.map((p) => p.t);
    // A step line that reaches "now", so the last value is visible.
    const now = Date.now() / 1000;
    const last = split[split.length - 1];
    const pts = now > last.t + 1 ? split.concat([{ ...last, t: now }]) : split;
    const data = [
      pts.map((p) => p.t),
      pts.map((p) => p.stableReady),
      pts.map((p) => p.canaryReady),
      pts.map((p) => p.actual),
      pts.map((p) => p.desired),
    ];
    void xs;
    const step = uPlot.paths.stepped({ align: 1 });
    charts.split = new uPlot(
      {
        width: chartWidth(box),
        height: 220,
        scales: { pct: { range: [0, 100] } },
        axes: [{}, { label: "ready pods" }, { scale: "pct", side: 1, label: "weight %", grid: { show: false } }],
        series: [
          {},
          { label: "stable ready", stroke: "#0969da", width: 2, paths: step },
          { label: "canary ready", stroke: "#bf8700", width: 2, paths: step },
          { label: "actual weight %", scale: "pct", stroke: "#8250df", dash: [4, 4], paths: step },
          { label: "desired weight %", scale: "pct", stroke: "#57606a", dash: [1, 3], paths: step },
        ],
      },
      data,
      box
    );
  }

  function metricBlock(m) {
    const block = el("section", { class: "metric", "aria-label": "metric " + m.name });
    block.append(el("h3", { text: m.name }));
    const conds = [];
    if (m.successCondition) conds.push("success: " + m.successCondition);
    if (m.failureCondition) conds.push("failure: " + m.failureCondition);
    if (m.compare) conds.push("compare with stable: maxIncrease " + m.compare.maxIncrease + ", minCount " + m.compare.minCount);
    block.append(el("p", { class: "conditions", text: conds.join(" · ") || "no condition recorded" }));
    const chart = el("div", {
      class: "chart metric-chart",
      role: "img",
      "aria-label": m.name + ": " + m.points.length + " measurements, thresholds " +
        m.success.concat(m.failure).map((t) => t.op + " " + t.value).join(", "),
      "data-metric": m.name,
      "data-points": m.points.length,
      "data-thresholds": m.success.concat(m.failure).map((t) => t.value).join(","),
    });
    block.append(chart);
    const table = el("table", { class: "measurements" },
      el("caption", { text: "Measurements of " + m.name }),
      el("thead", {}, el("tr", {}, ...["Time", "Value", "Verdict", "Why"].map((h) => el("th", { scope: "col", text: h })))));
    const tbody = el("tbody");
    for (const p of m.points.slice().reverse()) {
      tbody.append(el("tr", { class: "verdict-" + p.verdict },
        el("td", { text: p.time }), el("td", { text: p.raw === null ? "no data" : p.raw }),
        el("td", { text: p.verdict }), el("td", { text: p.message })));
    }
    table.append(tbody);
    const details = el("details", {}, el("summary", { text: "Measurements as a table" }), table);
    block.append(details);
    return { block, chart };
  }

  function drawMetric(m, box) {
    if (typeof uPlot === "undefined" || !m.points.length) return;
    const xs = m.points.map((p) => Date.parse(p.time) / 1000);
    const values = m.points.map((p) => p.value);
    const verdicts = ["Pass", "Fail", "Inconclusive", "Error"];
    const lows = values.filter((v) => v !== null);
    const data = [xs, values];
    const series = [{}, { label: "value", stroke: "#24292f", width: 1.5, spanGaps: true, points: { show: false } }];
    for (const v of verdicts) {
      // Points without a value (no data, errors) sit on the axis so the verdict still shows.
      data.push(m.points.map((p) => (p.verdict === v ? (p.value === null ? 0 : p.value) : null)));
      series.push({ label: v, stroke: VERDICT_COLOR[v], width: 0, paths: () => null,
        points: { show: true, size: 9, fill: VERDICT_COLOR[v], stroke: VERDICT_COLOR[v] } });
    }
    const lines = m.success.map((t) => ["success " + t.op + " " + t.value, t.value, "#1a7f37"])
      .concat(m.failure.map((t) => ["failure " + t.op + " " + t.value, t.value, "#cf222e"]));
    for (const [label, value, color] of lines) {
      data.push(xs.map(() => value));
      series.push({ label, stroke: color, dash: [6, 4], width: 1.5, points: { show: false } });
      lows.push(value);
    }
    const max = Math.max(...lows, 0);
    const min = Math.min(...lows, 0);
    const pad = (max - min) * 0.15 || 0.01;
    charts["metric-" + m.name] = new uPlot(
      {
        width: chartWidth(box),
        height: 200,
        scales: { y: { range: [min - (min < 0 ? pad : 0), max + pad] } },
        axes: [{}, { label: "result" }],
        series,
      },
      data,
      box
    );
  }

  function table(id, rows, cols) {
    const tbody = document.querySelector("#" + id + " tbody");
    tbody.replaceChildren(...rows.map((r) => el("tr", {}, ...cols.map((c) => el("td", { text: c(r) ?? "" })))));
  }

  function renderDetail(v) {
    const s = v.summary;
    document.getElementById("phase").replaceChildren(phase(s.phase));
    document.getElementById("step").textContent = s.step;
    document.getElementById("weight").textContent = s.desiredWeight + "% desired / " + s.actualWeight + "% actual";
    document.getElementById("ready").textContent = s.ready;
    document.getElementById("revs").textContent = "stable " + s.stable + ", canary " + s.canary;
    document.getElementById("message").textContent = s.message;
    document.getElementById("steps").replaceChildren(
      ...v.steps.map((st) => el("li", { class: "step step-" + st.state, "aria-current": st.state === "current" ? "step" : null, text: st.label }))
    );
    table("events", v.events, [(e) => e.time, (e) => e.type, (e) => e.reason, (e) => e.message]);
    table("conditions", v.conditions, [(c) => c.type, (c) => c.status, (c) => c.reason, (c) => c.message]);
    table("revisions", v.revisions, [(r) => r.revision, (r) => r.role, (r) => r.images, (r) => r.config || "-", (r) => (r.ready ?? "-") + "/" + (r.replicas ?? "-"), (r) => r.created]);
    drawSplit(v.split);
    const metrics = document.getElementById("metrics");
    for (const key of Object.keys(charts)) {
      if (key.startsWith("metric-")) { charts[key].destroy(); delete charts[key]; }
    }
    if (!v.metrics.length) {
      metrics.replaceChildren(el("p", { text: "No measurements yet." }));
    } else {
      const open = new Set([...metrics.querySelectorAll("details[open]")].map((d) => d.closest(".metric").getAttribute("aria-label")));
      const blocks = v.metrics.map(metricBlock);
      metrics.replaceChildren(...blocks.map((b) => b.block));
      blocks.forEach((b, i) => {
        if (open.has(b.block.getAttribute("aria-label"))) b.block.querySelector("details").open = true;
        drawMetric(v.metrics[i], b.chart);
      });
    }
    for (const b of document.querySelectorAll("button.verb")) {
      b.disabled = false;
      if (b.dataset.verb === "pause") b.hidden = v.paused;
      if (b.dataset.verb === "resume") b.hidden = !v.paused;
    }
  }

  async function act(ns, name, verb, button) {
    const out = document.getElementById("action-result");
    button.disabled = true;
    out.className = "";
    out.textContent = verb + "…";
    try {
      const resp = await fetch(
        "/api/rollouts/" + encodeURIComponent(ns) + "/" + encodeURIComponent(name) + "/" + verb,
        { method: "POST", headers: { "X-Ramp-CSRF": csrf }, credentials: "same-origin" }
      );
      const data = await resp.json();
      if (data.ok) {
        out.className = "ok";
        out.textContent = data.message;
      } else {
        out.className = "refused";
        out.textContent = "Refused" + (data.status ? " (" + data.status + ")" : "") + ": " + data.error;
      }
    } catch (err) {
      out.className = "refused";
      out.textContent = "Failed: " + err;
    } finally {
      button.disabled = false;
    }
  }

  function startDetail() {
    const ns = body.dataset.namespace;
    const name = body.dataset.name;
    for (const b of document.querySelectorAll("button.verb")) {
      b.addEventListener("click", () => act(ns, name, b.dataset.verb, b));
    }
    const base = "/api/rollouts/" + encodeURIComponent(ns) + "/" + encodeURIComponent(name);
    stream(base + "/stream", {
      detail: renderDetail,
      gone: (d) => setLive(d.error, false),
      problem: (d) => setLive("error: " + d.error, false),
    });
  }

  function start() {
    if (body.dataset.page === "list") startList();
    if (body.dataset.page === "detail") startDetail();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
