/* migfuzz dashboard charts: small SVG line, bar and swimlane charts, no dependencies.
 * A chart is <figure class="chart" data-kind="line|bars|hbars|lanes"> holding its data in
 * <script type="application/json">. The drawn <svg> carries data-points (how many data
 * points it drew) so tests can tell a drawn chart from an empty one. */
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";

  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function text(parent, x, y, s, cls, anchor) {
    var t = el("text", {x: x, y: y, "class": cls || "tick", "text-anchor": anchor || "middle"}, parent);
    t.textContent = s;
    return t;
  }
  function tip(node, s) { var t = el("title", {}, node); t.textContent = s; }

  function fmt(v) {
    var a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(1) + "G";
    if (a >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (a >= 1e4) return (v / 1e3).toFixed(0) + "k";
    if (a >= 1e3) return (v / 1e3).toFixed(1) + "k";
    if (a >= 10 || v === Math.round(v)) return String(Math.round(v));
    if (a >= 1) return v.toFixed(1);
    return v.toPrecision(2);
  }
  function fmtSeconds(s) {
    if (s >= 7200) return (s / 3600).toFixed(1) + "h";
    if (s >= 120) return (s / 60).toFixed(1) + "m";
    if (s >= 1 || s === 0) return fmt(s) + "s";
    return Math.round(s * 1000) + "ms";
  }
  /* nice tick values covering [lo, hi] (the last one is >= hi when cover is set) */
  function ticks(lo, hi, n, cover, integer) {
    if (hi <= lo) hi = lo + 1;
    var raw = (hi - lo) / n, mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 5, 10].map(function (m) { return m * mag; })
      .filter(function (s) { return s >= raw; })[0];
    if (integer) step = Math.max(1, Math.round(step));
    var top = cover ? Math.ceil(hi / step - 1e-9) * step : hi;
    var out = [];
    for (var i = Math.ceil(lo / step - 1e-9); i * step <= top + step * 1e-9; i++) out.push(i * step);
    return out;
  }
  function allInt(vs) { return vs.every(function (v) { return v === Math.round(v); }); }
  function empty(fig, msg) {
    var p = document.createElement("p");
    p.className = "nodata";
    p.textContent = msg || "no data yet";
    fig.appendChild(p);
  }
  function frame(fig, w, h) {
    var svg = el("svg", {viewBox: "0 0 " + w + " " + h, "class": "plot", role: "img",
                         preserveAspectRatio: "xMidYMid meet"});
    fig.appendChild(svg);
    return svg;
  }

  function line(fig, data) {
    var series = (data.series || []).filter(function (s) { return s.points && s.points.length; });
    if (!series.length) return empty(fig);
    var W = 560, H = 220, L = 52, R = 12, T = 12, B = 34;
    var xs = [], ys = [0];
    series.forEach(function (s) { s.points.forEach(function (p) { xs.push(p[0]); ys.push(p[1]); }); });
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var y1 = Math.max.apply(null, ys), yt = ticks(0, y1 || 1, 4, true, allInt(ys));
    y1 = yt[yt.length - 1] || 1;
    if (x1 <= x0) { x1 = x0 + Math.max(Math.abs(x0) * 0.1, 0.01); x0 = x0 - (x1 - x0); }
    var sx = function (x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
    var sy = function (y) { return H - B - y / y1 * (H - T - B); };
    var svg = frame(fig, W, H), n = 0;
    var g = el("g", {"class": "axes"}, svg);
    yt.forEach(function (v) {
      el("line", {x1: L, x2: W - R, y1: sy(v), y2: sy(v), "class": "grid"}, g);
      text(g, L - 6, sy(v) + 4, fmt(v), "tick", "end");
    });
    ticks(x0, x1, 5).forEach(function (v) {
      if (v < x0 || v > x1) return;
      el("line", {x1: sx(v), x2: sx(v), y1: H - B, y2: H - B + 4, "class": "axis"}, g);
      text(g, sx(v), H - B + 16, fmtSeconds(v));
    });
    el("line", {x1: L, x2: W - R, y1: H - B, y2: H - B, "class": "axis"}, g);
    if (fig.dataset.x) text(g, (L + W - R) / 2, H - 2, fig.dataset.x, "label");
    series.forEach(function (s, i) {
      var d = "", pts = s.points, prev = null;
      pts.forEach(function (p, j) {
        if (data.step && prev) d += "L" + sx(p[0]).toFixed(1) + "," + sy(prev[1]).toFixed(1);
        d += (j ? "L" : "M") + sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1);
        prev = p;
      });
      var path = el("path", {d: d, "class": "series s" + (i % 8)}, svg);
      tip(path, s.name);
      if (pts.length <= 80) {
        pts.forEach(function (p) {
          var c = el("circle", {cx: sx(p[0]), cy: sy(p[1]), r: 2.5, "class": "dot s" + (i % 8)}, svg);
          tip(c, s.name + ": " + fmt(p[1]) + " at " + fmtSeconds(p[0]));
        });
      }
      n += pts.length;
    });
    if (series.length > 1 || data.legend) legend(fig, series.map(function (s) { return s.name; }));
    svg.setAttribute("data-points", n);
  }

  /* names: strings (colour i) or [colour class index, text] pairs */
  function legend(fig, names) {
    var ul = document.createElement("ul");
    ul.className = "legend";
    names.forEach(function (nm, i) {
      var li = document.createElement("li");
      var cls = Array.isArray(nm) ? nm[0] : i;
      li.className = "s" + (cls % 8);
      li.textContent = Array.isArray(nm) ? nm[1] : nm;
      ul.appendChild(li);
    });
    fig.appendChild(ul);
    return ul;
  }

  function bars(fig, data) {
    var pts = ((data.series || [])[0] || {}).points || [];
    if (!pts.length || !pts.some(function (p) { return p[1] > 0; })) return empty(fig);
    var W = 560, H = 200, L = 44, R = 8, T = 10, B = 30;
    var y1 = Math.max.apply(null, pts.map(function (p) { return p[1]; }));
    var yt = ticks(0, y1, 4, true, allInt(pts.map(function (p) { return p[1]; })));
    y1 = yt[yt.length - 1] || 1;
    var svg = frame(fig, W, H), bw = (W - L - R) / pts.length;
    var sy = function (y) { return H - B - y / y1 * (H - T - B); };
    yt.forEach(function (v) {
      el("line", {x1: L, x2: W - R, y1: sy(v), y2: sy(v), "class": "grid"}, svg);
      text(svg, L - 6, sy(v) + 4, fmt(v), "tick", "end");
    });
    pts.forEach(function (p, i) {
      var r = el("rect", {x: L + i * bw + 1, y: sy(p[1]), width: Math.max(bw - 2, 1),
                          height: H - B - sy(p[1]), "class": "bar s0"}, svg);
      tip(r, fmt(p[1]) + " at +" + fmtSeconds(p[0]));
    });
    text(svg, L, H - B + 16, "+" + fmtSeconds(pts[0][0]), "tick", "start");
    text(svg, W - R, H - B + 16, "+" + fmtSeconds(pts[pts.length - 1][0]), "tick", "end");
    if (fig.dataset.x) text(svg, (L + W - R) / 2, H - 2, fig.dataset.x, "label");
    svg.setAttribute("data-points", pts.length);
  }

  /* bars: [label, value] or [label, value, group index]; with data.groups
   * ([{name, cls}]) a bar's colour is its group's and a legend says what each colour means;
   * without, every bar has one colour (a colour per bar would mean nothing) */
  function hbars(fig, data) {
    var items = data.bars || [], groups = data.groups || [];
    if (!items.length) return empty(fig);
    var W = 560, row = 22, L = 190, R = 50, H = items.length * row + 8;
    var m = Math.max.apply(null, items.map(function (b) { return b[1]; })) || 1;
    var svg = frame(fig, W, H);
    var used = {};
    items.forEach(function (b, i) {
      var y = 4 + i * row, w = Math.max(b[1] / m * (W - L - R), 1);
      var g = groups[b[2]], cls = g ? g.cls : 0;
      if (g) used[b[2]] = true;
      var label = String(b[0]);
      var t = text(svg, L - 6, y + 15, label.length > 30 ? label.slice(0, 29) + "…" : label, "tick", "end");
      tip(t, label);
      var r = el("rect", {x: L, y: y + 3, width: w, height: row - 6, "class": "bar s" + cls}, svg);
      tip(r, label + ": " + b[1] + (g ? " (" + g.name + ")" : ""));
      text(svg, L + w + 4, y + 15, fmt(b[1]), "tick", "start");
    });
    if (groups.length) {
      var ul = legend(fig, groups.map(function (g, i) { return used[i] ? [g.cls, g.name] : null; })
        .filter(function (x) { return x; }));
      ul.classList.add("groups");
    }
    svg.setAttribute("data-points", items.length);
  }

  /* swimlane overview: one horizontal lane per actor, one tick per step, as wide as the
   * figure (a long trace scrolls sideways at 3 px a step at least); decisive steps are tall
   * and red; every tick has a <title> tooltip (step, actor, site, object); a click scrolls
   * the step table to that step */
  function lanes(fig, data) {
    var actors = data.actors || [], steps = data.steps || [];
    if (!actors.length || !steps.length) return empty(fig, "no steps");
    var lane = 30, L = 90, R = 10, T = 6;
    var avail = Math.max(fig.clientWidth - 22, 320);
    var W = Math.max(avail, L + R + steps.length * 3);
    var H = T + actors.length * lane + 22, sw = (W - L - R) / steps.length;
    var svg = frame(fig, W, H);
    svg.classList.add("lanes");
    if (W > avail) {
      svg.setAttribute("width", W);
      svg.setAttribute("height", H);
    } else {
      svg.classList.add("fit");
    }
    actors.forEach(function (a, i) {
      var y = T + i * lane;
      el("rect", {x: L, y: y, width: W - L - R, height: lane - 4, "class": "lane-bg"}, svg);
      text(svg, L - 6, y + lane / 2 + 2, a, "tick lane-name", "end");
    });
    steps.forEach(function (s, n) {
      var y = T + s[0] * lane, mark = s[2];
      var r = el("rect", {x: L + n * sw, y: mark ? y : y + 6, width: Math.max(sw - (sw > 4 ? 1 : 0.5), 0.8),
                          height: mark ? lane - 4 : lane - 16,
                          "class": "tickmark lane-" + (s[0] % 8) + (mark ? " mark" : ""),
                          "data-step": n}, svg);
      tip(r, "step " + n + ": " + actors[s[0]] + " " + s[1] + (s[3] ? " " + s[3] : "") +
          (mark ? " (decisive: on the involved page or address)" : ""));
    });
    var every = Math.max(1, Math.ceil(40 / sw));
    ticks(0, steps.length - 1, Math.min(16, Math.max(2, Math.floor(steps.length / every))))
      .forEach(function (v) {
        text(svg, L + v * sw + sw / 2, H - 4, String(v), "tick");
      });
    svg.addEventListener("click", function (ev) {
      var n = ev.target.getAttribute && ev.target.getAttribute("data-step");
      var row = n !== null && document.getElementById("step-" + n);
      if (row) { row.scrollIntoView({block: "center"}); row.classList.add("flash"); }
    });
    fig.classList.add("wide");
    svg.setAttribute("data-points", steps.length);
  }

  function spark(span) {
    var vals = (span.dataset.values || "").split(",").map(Number);
    if (!vals.length) return;
    var W = 96, H = 18, m = Math.max.apply(null, vals) || 1, bw = W / vals.length;
    var svg = el("svg", {viewBox: "0 0 " + W + " " + H, width: W, height: H, "class": "sparkline"});
    vals.forEach(function (v, i) {
      if (!v) return;
      var h = Math.max(v / m * H, 1.5);
      el("rect", {x: i * bw, y: H - h, width: Math.max(bw - 0.6, 0.6), height: h, "class": "bar s0"}, svg);
    });
    svg.setAttribute("data-points", vals.length);
    span.appendChild(svg);
  }

  var KINDS = {line: line, bars: bars, hbars: hbars, lanes: lanes};
  function drawAll() {
    document.querySelectorAll("figure.chart").forEach(function (fig) {
      var src = fig.querySelector("script[type='application/json']");
      var draw = KINDS[fig.dataset.kind];
      if (!src || !draw) return;
      draw(fig, JSON.parse(src.textContent || "{}"));
      fig.classList.add("drawn");
    });
    document.querySelectorAll("span.spark").forEach(spark);
  }
  window.migfuzzCharts = {draw: drawAll};
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawAll);
  else drawAll();
})();
