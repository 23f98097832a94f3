/* The supervisor board: draws the charts (plain SVG) from the figures the page embeds, and keeps the panels
   current. Ticket events on ws/supervisor/ ask for a reload of the panels, at most once every MIN_INTERVAL;
   a reload every minute also catches what no event announces (midnight, deadlines passing).
   Charts are hidden from screen readers: each has a table with the same figures next to it. */
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var MIN_INTERVAL = 5000;
  var FALLBACK_INTERVAL = 60000;
  var MAX_BACKOFF = 30000;

  var board = document.getElementById("board");
  if (!board) return;
  var panels = document.getElementById("board-panels");
  var connection = document.getElementById("board-connection");

  // --- drawing -------------------------------------------------------------------------------------------

  function el(name, attrs, text) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function truncate(text, max) { return text.length > max ? text.slice(0, max - 1) + "…" : text; }

  // Horizontal bars, one per item: {label, value, text}. Items without a value are left out.
  function barChart(container, items) {
    clear(container);
    items = items.filter(function (item) { return item.value !== null && item.value !== undefined; });
    if (!items.length) return;
    var labelWidth = 150, barMax = 300, valueWidth = 60, rowHeight = 24;
    var width = labelWidth + barMax + valueWidth, height = items.length * rowHeight + 4;
    var max = Math.max.apply(null, items.map(function (item) { return item.value; })) || 1;
    var svg = el("svg", { viewBox: "0 0 " + width + " " + height, focusable: "false" });
    items.forEach(function (item, index) {
      var y = index * rowHeight + 2;
      var length = Math.max(1, (item.value / max) * barMax);
      var title = el("title", {}, item.label + "：" + item.text);
      var label = el("text", { x: labelWidth - 6, y: y + 15, "text-anchor": "end", "class": "chart-label" },
        truncate(item.label, 12));
      label.appendChild(title);
      svg.appendChild(label);
      svg.appendChild(el("rect", { x: labelWidth, y: y + 3, width: length, height: rowHeight - 8, "class": "chart-bar" }));
      svg.appendChild(el("text", { x: labelWidth + length + 6, y: y + 15, "class": "chart-tick" }, item.text));
    });
    svg.appendChild(el("line", { x1: labelWidth, y1: 0, x2: labelWidth, y2: height, "class": "chart-axis" }));
    container.appendChild(svg);
  }

  // Daily intake as bars (left axis) and the three rates as lines on 0–100% (right axis); a day without a
  // rate breaks its line rather than drawing it at zero.
  function trendChart(container, days) {
    clear(container);
    if (!days.length) return;
    var left = 44, right = 44, top = 28, bottom = 34, plotWidth = 640, plotHeight = 200;
    var width = left + plotWidth + right, height = top + plotHeight + bottom;
    var step = plotWidth / days.length;
    var maxIntake = Math.max.apply(null, days.map(function (d) { return d.intake; })) || 1;
    var svg = el("svg", { viewBox: "0 0 " + width + " " + height, focusable: "false" });

    [0, 0.5, 1].forEach(function (share) {
      var y = top + plotHeight * (1 - share);
      svg.appendChild(el("line", { x1: left, y1: y, x2: left + plotWidth, y2: y, "class": "chart-grid" }));
      svg.appendChild(el("text", { x: left - 6, y: y + 4, "text-anchor": "end", "class": "chart-tick" },
        String(Math.round(maxIntake * share))));
      svg.appendChild(el("text", { x: left + plotWidth + 6, y: y + 4, "class": "chart-tick" },
        Math.round(share * 100) + "%"));
    });
    days.forEach(function (day, index) {
      var barHeight = (day.intake / maxIntake) * plotHeight;
      var x = left + index * step;
      var bar = el("rect", {
        x: x + step * 0.15, y: top + plotHeight - barHeight, width: step * 0.7, height: barHeight,
        "class": "chart-bar-muted"
      });
      bar.appendChild(el("title", {}, day.day + " 受理 " + day.intake + " 件"));
      svg.appendChild(bar);
      if (index % 5 === 0 || index === days.length - 1) {
        svg.appendChild(el("text", { x: x + step / 2, y: top + plotHeight + 16, "text-anchor": "middle", "class": "chart-tick" },
          day.label));
      }
    });
    var series = [["response", "响应率"], ["resolution", "解决率"], ["satisfaction", "满意率"]];
    series.forEach(function (pair, seriesIndex) {
      var name = pair[0], segments = [], current = [];
      days.forEach(function (day, index) {
        if (day[name] === null || day[name] === undefined) {
          if (current.length) segments.push(current);
          current = [];
          return;
        }
        current.push((left + index * step + step / 2).toFixed(1) + "," + (top + plotHeight * (1 - day[name] / 100)).toFixed(1));
      });
      if (current.length) segments.push(current);
      segments.forEach(function (points) {
        if (points.length === 1) {
          var xy = points[0].split(",");
          svg.appendChild(el("circle", { cx: xy[0], cy: xy[1], r: 3, "class": "chart-line " + name }));
        } else {
          svg.appendChild(el("polyline", { points: points.join(" "), "class": "chart-line " + name }));
        }
      });
      var legendX = left + seriesIndex * 110;
      svg.appendChild(el("line", { x1: legendX, y1: 10, x2: legendX + 24, y2: 10, "class": "chart-line " + name }));
      svg.appendChild(el("text", { x: legendX + 30, y: 14, "class": "chart-legend" }, pair[1]));
    });
    var legendBar = left + series.length * 110;
    svg.appendChild(el("rect", { x: legendBar, y: 4, width: 14, height: 12, "class": "chart-bar-muted" }));
    svg.appendChild(el("text", { x: legendBar + 20, y: 14, "class": "chart-legend" }, "受理量"));
    svg.appendChild(el("line", { x1: left, y1: top + plotHeight, x2: left + plotWidth, y2: top + plotHeight, "class": "chart-axis" }));
    container.appendChild(svg);
  }

  function draw() {
    var source = document.getElementById("board-data");
    if (!source) return;
    var data = JSON.parse(source.textContent);
    board.querySelectorAll("[data-chart]").forEach(function (container) {
      var kind = container.getAttribute("data-chart");
      if (kind === "trend") trendChart(container, data.trend);
      else barChart(container, data[kind] || []);
    });
  }

  // --- reloading ---------------------------------------------------------------------------------------

  var lastLoad = Date.now();
  var timer = null;
  var loading = false;

  function schedule() {
    if (timer !== null || loading) return;
    var wait = Math.max(0, lastLoad + MIN_INTERVAL - Date.now());
    timer = window.setTimeout(function () { timer = null; reload(); }, wait);
  }

  function reload() {
    loading = true;
    lastLoad = Date.now();
    fetch(board.getAttribute("data-fragment"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.status === 403 || response.redirected) {
          // Signed out or no longer allowed: the full page says why.
          window.location.reload();
          return null;
        }
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        if (html === null) return;
        var focused = document.activeElement && document.activeElement.closest("details");
        var openDetails = Array.prototype.map.call(panels.querySelectorAll("details"), function (d) { return d.open; });
        panels.innerHTML = html;
        // Keep what the reader opened open across the reload.
        panels.querySelectorAll("details").forEach(function (d, i) { if (openDetails[i]) d.open = true; });
        if (focused) {
          var summary = panels.querySelector("details summary");
          if (summary) summary.focus();
        }
        draw();
      })
      .catch(function () {
        setConnection("offline", "实时更新：刷新失败，稍后重试");
      })
      .then(function () { loading = false; });
  }

  // --- the socket ----------------------------------------------------------------------------------------

  var backoff = 1000;

  function setConnection(state, text) {
    connection.setAttribute("data-state", state);
    connection.textContent = text;
  }

  function connect() {
    if (!("WebSocket" in window)) return;
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + board.getAttribute("data-ws"));
    socket.onopen = function () { backoff = 1000; };
    socket.onmessage = function (message) {
      var event;
      try { event = JSON.parse(message.data); } catch (error) { return; }
      if (event.type === "catchup.complete") {
        setConnection("live", "实时更新：已连接");
        // Events may have happened while the socket was down.
        schedule();
        board.dispatchEvent(new CustomEvent("hotline:live", { detail: event }));
      } else if (typeof event.type === "string" && event.type.indexOf("ticket.") === 0) {
        schedule();
      } else if (event.type === "agent.state" || event.type === "routing.proactive_alert" ||
                 (typeof event.type === "string" && event.type.indexOf("call.") === 0)) {
        // Calls, seats and proactive alerts: the live panel (telephony/board_live.js) reads them from their APIs.
        board.dispatchEvent(new CustomEvent("hotline:live", { detail: event }));
      } else if (event.type === "error") {
        setConnection("offline", "实时更新：" + event.detail);
      }
    };
    socket.onclose = function (close) {
      if (close.code === 4401 || close.code === 4403) {
        setConnection("offline", "实时更新：无权订阅（每分钟刷新）");
        return;
      }
      setConnection("offline", "实时更新：连接中断，正在重连（每分钟刷新）");
      window.setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, MAX_BACKOFF);
    };
  }

  draw();
  connect();
  window.setInterval(schedule, FALLBACK_INTERVAL);
})();
