/* Waldstadt pages: draw the charts (uPlot, served from /static/vendor) from the JSON that the
   server put into the page, and run the program editor's live preview. No other network use
   than this site's own /lighting endpoints. */
"use strict";
(function () {
  var COLOURS = ["#1f6f4a", "#e08a00", "#2f6fb3", "#9c4dcc", "#b3261e", "#5f6f68", "#17a2b8", "#6b8e23"];
  var body = document.body;
  var lang = body.dataset.lang || "de";
  var tz = body.dataset.tz || "Europe/Berlin";
  var csrf = body.dataset.csrf || "";

  function data(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function hhmm(ts) {
    return new Date(ts * 1000).toLocaleTimeString(lang === "de" ? "de-DE" : "en-GB",
      { hour: "2-digit", minute: "2-digit", timeZone: tz });
  }

  function width(el) { return Math.max(260, Math.min(el.clientWidth || 600, 1100)); }

  function chart(el, times, series, opts) {
    if (!window.uPlot || !el) { return null; }
    opts = opts || {};
    var cfg = {
      width: width(el),
      height: opts.height || 240,
      scales: { x: { time: !opts.categories } },
      axes: [
        opts.categories ? { values: function (u, vals) { return vals.map(function (v) { return opts.categories[v] || ""; }); } }
                        : { values: function (u, vals) { return vals.map(hhmm); } },
        { label: opts.unit || "", size: 56 }
      ],
      series: [{ label: opts.xLabel || (opts.categories ? "" : (lang === "de" ? "Zeit" : "Time")),
                 value: function (u, v) { return v == null ? "" : (opts.categories ? opts.categories[v] : hhmm(v)); } }]
        .concat(series.map(function (s, i) {
          return { label: s.label, stroke: s.colour || COLOURS[i % COLOURS.length], width: 2,
                   fill: s.fill || undefined, paths: s.step ? uPlot.paths.stepped({ align: 1 }) : undefined,
                   value: function (u, v) { return v == null ? "—" : v.toFixed(opts.digits == null ? 2 : opts.digits); } };
        })),
      legend: { live: true }
    };
    el.innerHTML = "";
    var plot = new uPlot(cfg, [times].concat(series.map(function (s) { return s.values; })), el);
    el.dataset.ready = "1";
    el.dataset.points = String(times.length);
    window.addEventListener("resize", function () { plot.setSize({ width: width(el), height: cfg.height }); });
    return plot;
  }

  /* member: today per quarter-hour */
  function memberPage() {
    var d = data("member-data");
    if (!d) { return; }
    var c = d.chart, keys = Object.keys(c.series);
    chart(document.getElementById("member-chart"), c.times, keys.map(function (k) {
      return { label: d.labels[k] || k, values: c.series[k], step: true };
    }), { unit: "kWh", digits: 3 });
  }

  /* operator: the plans; the page reloads every 30 s unless the override form is in use */
  function operatorPage() {
    var d = data("plan-data");
    if (!d) { return; }
    var form = document.getElementById("override-form"), touched = false;
    if (form) { form.addEventListener("input", function () { touched = true; }); }
    setInterval(function () {
      if (!touched && document.visibilityState === "visible") { location.reload(); }
    }, 30000);
    d.plans.forEach(function (p, i) {
      var sel = function (kind) { return document.querySelector('[data-chart="' + kind + '"][data-index="' + i + '"]'); };
      chart(sel("plan-grid"), p.times, [
        { label: d.labels.grid + " kW", values: p.grid, step: true },
        { label: d.labels.shared + " kW", values: p.shared, step: true }
      ], { unit: "kW" });
      var bat = Object.keys(p.batteries);
      if (bat.length) {
        chart(sel("plan-soc"), p.times, bat.map(function (k) { return { label: k, values: p.batteries[k] }; }), { unit: "kWh", height: 200 });
      }
      var ev = Object.keys(p.evs);
      if (ev.length) {
        chart(sel("plan-ev"), p.times, ev.map(function (k) { return { label: k, values: p.evs[k], step: true }; }), { unit: "kW", height: 200 });
      }
    });
  }

  /* lighting: the program editor with its live preview, and the year */
  function lightingPage() {
    var d = data("editor-data");
    if (!d) { return; }
    var ed = d.editor, labels = d.labels;
    var tbody = document.querySelector("#ed-steps tbody");
    var segSel = document.getElementById("ed-segment");
    var progSel = document.getElementById("ed-program");
    var nightIn = document.getElementById("ed-night");
    var errorEl = document.getElementById("ed-error");
    var chartEl = document.getElementById("preview-chart");
    var stored = ed.stored;
    var timer = null;
    var plot = null;
    var seq = 0;

    function cell(input) { var td = document.createElement("td"); td.appendChild(input); return td; }
    function input(type, value, name) {
      var el = document.createElement("input");
      el.type = type; el.value = value == null ? "" : value; el.name = name;
      if (type === "number") { el.step = "any"; }
      el.addEventListener("input", schedule);
      return el;
    }
    function addRow(step) {
      var tr = document.createElement("tr");
      tr.appendChild(cell(input("text", step.name, "name")));
      var sel = document.createElement("select"); sel.name = "anchor";
      ed.anchors.forEach(function (a) { var o = document.createElement("option"); o.value = a; o.textContent = a; sel.appendChild(o); });
      sel.value = step.anchor; sel.addEventListener("change", schedule);
      tr.appendChild(cell(sel));
      tr.appendChild(cell(input("text", step.clock, "clock")));
      tr.appendChild(cell(input("number", step.offset_min, "offset_min")));
      tr.appendChild(cell(input("number", step.level_pct, "level_pct")));
      tr.appendChild(cell(input("number", step.ramp_s, "ramp_s")));
      var rm = document.createElement("button"); rm.type = "button"; rm.className = "secondary"; rm.textContent = labels.remove;
      rm.addEventListener("click", function () { tr.remove(); schedule(); });
      tr.appendChild(cell(rm));
      tbody.appendChild(tr);
    }
    function load(name) {
      tbody.innerHTML = "";
      ed.programs[name].steps.forEach(addRow);
    }
    function program() {
      var steps = Array.prototype.map.call(tbody.rows, function (tr) {
        var v = function (n) { return tr.querySelector('[name="' + n + '"]').value; };
        var step = { name: v("name"), anchor: v("anchor"), offset_min: parseFloat(v("offset_min") || "0"),
                     level_pct: parseFloat(v("level_pct")), ramp_s: parseFloat(v("ramp_s") || "0") };
        if (v("clock")) { step.clock = v("clock"); }
        return step;
      });
      return { name: progSel.value, steps: steps };
    }
    function draw(edited) {
      /* both curves on the union of their instants (step functions: carry the last level) */
      var set = {};
      stored.points.concat(edited.points).forEach(function (p) { set[p[0]] = true; });
      var times = Object.keys(set).map(Number).sort(function (a, b) { return a - b; });
      function on(points) {
        var j = 0, out = [];
        times.forEach(function (t) {
          while (j + 1 < points.length && points[j + 1][0] <= t) { j++; }
          out.push(points.length && points[0][0] <= t ? points[j][1] : null);
        });
        return out;
      }
      plot = chart(chartEl, times, [
        { label: labels.stored + " (" + stored.program + ")", values: on(stored.points), colour: "#9aa5a0" },
        { label: labels.edited, values: on(edited.points), colour: "#1f6f4a" }
      ], { unit: "%", digits: 0, height: 260 });
      chartEl.dataset.energy = String(edited.energy_wh);
      var fig = document.getElementById("preview-figures");
      var fmt = function (v, n) { return Number(v).toLocaleString(lang === "de" ? "de-DE" : "en-GB", { minimumFractionDigits: n, maximumFractionDigits: n }); };
      fig.querySelector('[data-key="energy"]').textContent = fmt(edited.energy_wh / 1000, 2);
      fig.querySelector('[data-key="baseline"]').textContent = fmt(edited.baseline_wh / 1000, 2);
      fig.querySelector('[data-key="savings"]').textContent = fmt(edited.savings_pct, 1);
    }
    function post(payload) {
      return fetch("/lighting/preview", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(payload)
      }).then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); });
    }
    function refresh(reloadStored) {
      var mine = ++seq;
      var night = nightIn.value || ed.night;
      var base = reloadStored ? post({ segment: segSel.value, night: night }) : Promise.resolve(null);
      base.then(function (s) {
        if (s && s.ok) { stored = s.body; }
        return post({ segment: segSel.value, night: night, program: program() });
      }).then(function (r) {
        if (mine !== seq) { return; }
        if (!r.ok) {
          errorEl.hidden = false;
          errorEl.textContent = (r.body.detail || []).map(function (e) { return e.field + ": " + e.reason; }).join("; ");
          return;
        }
        errorEl.hidden = true;
        draw(r.body);
      });
    }
    function schedule() { clearTimeout(timer); timer = setTimeout(function () { refresh(false); }, 250); }
    progSel.addEventListener("change", function () { load(progSel.value); refresh(false); });
    segSel.addEventListener("change", function () { refresh(true); year(); });
    nightIn.addEventListener("change", function () { refresh(true); });
    document.getElementById("ed-tonight").addEventListener("click", function () { nightIn.value = ed.tonight; refresh(true); });
    document.getElementById("ed-add").addEventListener("click", function () {
      addRow({ name: "step " + (tbody.rows.length + 1), anchor: "clock", clock: "23:00", offset_min: 0, level_pct: 50, ramp_s: 60 });
      schedule();
    });
    document.getElementById("ed-save").addEventListener("click", function () {
      var saved = document.getElementById("ed-saved");
      fetch("/lighting/programs/" + encodeURIComponent(progSel.value), {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({ steps: program().steps })
      }).then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }); })
        .then(function (r) {
          if (!r.ok) {
            errorEl.hidden = false;
            var detail = r.body.detail;
            errorEl.textContent = Array.isArray(detail)
              ? detail.map(function (e) { return e.field + ": " + e.reason; }).join("; ") : String(detail);
            return;
          }
          errorEl.hidden = true;
          ed.programs[progSel.value] = r.body.item;
          saved.hidden = false;
          saved.textContent = labels.saved + " " + r.body.detail;
          refresh(true);
        });
    });
    load(ed.program);
    draw(stored);

    function year() {
      var yl = data("year-labels");
      var fig = document.getElementById("year-figures");
      fetch("/lighting/year.json?segment=" + encodeURIComponent(segSel.value) + "&year=" + ed.year, { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (y) {
          fig.textContent = yl.energy + ": " + y.energy_kwh.toLocaleString() + " kWh · " + yl.baseline + ": " +
            y.baseline_kwh.toLocaleString() + " kWh · " + yl.savings + ": " + y.savings_pct + " % · CO₂ −" + y.co2_saved_kg + " kg";
          fig.dataset.ready = "1";
          var months = y.months.map(function (m) { return m.month; });
          var names = {}; months.forEach(function (m) { names[m] = String(m); });
          chart(document.getElementById("year-chart"), months, [
            { label: yl.energy + " kWh", values: y.months.map(function (m) { return m.energy_kwh; }) },
            { label: yl.baseline + " kWh", values: y.months.map(function (m) { return m.baseline_kwh; }), colour: "#9aa5a0" }
          ], { unit: "kWh", digits: 1, height: 200, categories: names, xLabel: lang === "de" ? "Monat" : "Month" });
        });
    }
    year();
  }

  function start() { memberPage(); operatorPage(); lightingPage(); }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
