/* The supervisor board's live telephony panel: the queue, the calls on the line and every seat's state, read from
   the telephony API and read again when board.js hears a call or seat event on ws/supervisor/ (it passes them on as
   "hotline:live" events on the board). Durations move every second between readings. The seats' bar is hidden
   from assistive technology: the table under it says the same. Texts go in with textContent. */
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var panel = document.getElementById("board-live");
  var board = document.getElementById("board");
  if (!panel || !board) return;

  var STATES = [
    ["on_call", "通话中"],
    ["wrap_up", "话后处理"],
    ["available", "空闲"],
    ["away", "暂离"]
  ];
  // At least 3:1 against the white background (WCAG 1.4.11), as the board's other chart marks.
  var COLOURS = { on_call: "#0b57d0", wrap_up: "#b06000", available: "#137333", away: "#80868b" };
  var CALL_STATUS = { ringing: "振铃（排队）", active: "通话中", held: "保持" };
  var calls = [];
  var agents = [];
  var alerts = [];
  var offset = 0;
  var timer = null;
  var wrapUpTimer = null;

  function text(id, value) { document.getElementById(id).textContent = value; }

  function cell(value, className) {
    var td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = value;
    return td;
  }

  function durationCell(since) {
    var td = cell(duration(since), "num");
    if (since) td.setAttribute("data-since", since);
    return td;
  }

  // Only the durations move between readings; rows are not rebuilt under a reader's cursor.
  function tick() {
    panel.querySelectorAll("td[data-since]").forEach(function (td) {
      td.textContent = duration(td.getAttribute("data-since"));
    });
  }

  function duration(since) {
    if (!since) return "—";
    var seconds = Math.max(0, Math.floor((Date.now() + offset - Date.parse(since)) / 1000));
    var minutes = Math.floor(seconds / 60);
    if (minutes >= 60) return Math.floor(minutes / 60) + " 小时 " + (minutes % 60) + " 分";
    return String(minutes).padStart(2, "0") + ":" + String(seconds % 60).padStart(2, "0");
  }

  function renderCalls() {
    var body = document.getElementById("live-calls");
    body.replaceChildren.apply(body, calls.map(function (call) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-call", call.call_id);
      tr.setAttribute("data-status", call.status);
      [cell(call.hotline_line), cell(call.caller_masked || "未显示"), cell(CALL_STATUS[call.status] || call.status_display),
        cell(call.agent_name || "—"), durationCell(call.answered_at || call.started_at)]
        .forEach(function (td) { tr.appendChild(td); });
      return tr;
    }));
    if (!calls.length) {
      var tr = document.createElement("tr");
      var td = cell("当前没有通话。");
      td.colSpan = 5;
      tr.appendChild(td);
      body.appendChild(tr);
    }
  }

  function renderAgents() {
    var labels = {};
    STATES.forEach(function (pair) { labels[pair[0]] = pair[1]; });
    var body = document.getElementById("live-agents");
    body.replaceChildren.apply(body, agents.map(function (agent) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-agent", agent.agent_id);
      tr.setAttribute("data-state", agent.state);
      [cell(agent.agent_name), cell(labels[agent.state] || agent.state_display), durationCell(agent.since)]
        .forEach(function (td) { tr.appendChild(td); });
      return tr;
    }));
    if (!agents.length) {
      var tr = document.createElement("tr");
      var td = cell("还没有坐席签入。");
      td.colSpan = 3;
      tr.appendChild(td);
      body.appendChild(tr);
    }
  }

  var timeFormat = new Intl.DateTimeFormat("zh-CN", {
    timeZone: "Asia/Shanghai", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hour12: false
  });

  function renderAlerts(total) {
    text("live-alerts", String(total));
    var body = document.getElementById("live-alert-rows");
    body.replaceChildren.apply(body, alerts.map(function (alert) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-alert", alert.id);
      [cell(alert.region_name), cell(alert.category_name), cell(String(alert.count), "num"),
        cell(alert.window_days + " 天内"), cell(timeFormat.format(new Date(alert.raised_at)))]
        .forEach(function (td) { tr.appendChild(td); });
      return tr;
    }));
    if (!alerts.length) {
      var tr = document.createElement("tr");
      var td = cell("当前没有待确认的预警。");
      td.colSpan = 5;
      tr.appendChild(td);
      body.appendChild(tr);
    }
  }

  // One bar split by state: how the seats are spread now.
  function renderChart() {
    var canvas = document.getElementById("live-chart");
    canvas.replaceChildren();
    if (!agents.length) return;
    var width = 600, height = 40, x = 0;
    var svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("focusable", "false");
    STATES.forEach(function (pair) {
      var count = agents.filter(function (a) { return a.state === pair[0]; }).length;
      if (!count) return;
      var w = (count / agents.length) * width;
      var rect = document.createElementNS(SVG, "rect");
      rect.setAttribute("x", x);
      rect.setAttribute("y", 4);
      rect.setAttribute("width", w);
      rect.setAttribute("height", 20);
      rect.setAttribute("fill", COLOURS[pair[0]]);
      rect.setAttribute("data-state", pair[0]);
      svg.appendChild(rect);
      var label = document.createElementNS(SVG, "text");
      label.setAttribute("x", x + 4);
      label.setAttribute("y", 38);
      label.setAttribute("class", "chart-tick");
      label.textContent = pair[1] + " " + count;
      svg.appendChild(label);
      x += w;
    });
    canvas.appendChild(svg);
  }

  function render() {
    var talking = calls.filter(function (c) { return c.status !== "ringing"; }).length;
    text("live-talking", String(talking));
    text("live-available", String(agents.filter(function (a) { return a.state === "available"; }).length));
    text("live-wrap-up", String(agents.filter(function (a) { return a.state === "wrap_up"; }).length));
    renderCalls();
    renderAgents();
    renderChart();
  }

  function get(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (response) {
      var date = Date.parse(response.headers.get("Date") || "");
      if (!isNaN(date)) offset = date - Date.now();
      if (!response.ok) throw new Error(response.status === 403 ? "无权查看" : "HTTP " + response.status);
      return response.json();
    });
  }

  function load() {
    return Promise.all([
      get(panel.getAttribute("data-calls")),
      get(panel.getAttribute("data-agents")),
      get(panel.getAttribute("data-alerts"))
    ])
      .then(function (results) {
        calls = results[0].calls;
        agents = results[1].agents;
        alerts = results[2].results;
        text("live-queue", String(results[0].queue_length));
        render();
        renderAlerts(results[2].count);
        text("live-note", "");
        panel.setAttribute("data-loaded", String(Number(panel.getAttribute("data-loaded")) + 1));
        // A wrap-up ends by itself: read again when the first one is due.
        window.clearTimeout(wrapUpTimer);
        var ends = agents.map(function (a) { return a.wrap_up_ends_at && Date.parse(a.wrap_up_ends_at); })
          .filter(Boolean).sort();
        if (ends.length) wrapUpTimer = window.setTimeout(load, Math.max(1000, ends[0] - (Date.now() + offset) + 500));
      })
      .catch(function (error) { text("live-note", "实时话务读取失败：" + error.message + "（稍后重试）"); });
  }

  // Events come in bursts (a call starting says call.started and agent.state): one reading answers a burst.
  function schedule() {
    window.clearTimeout(timer);
    timer = window.setTimeout(load, 300);
  }

  board.addEventListener("hotline:live", schedule);
  window.setInterval(tick, 1000);
  window.setInterval(load, 30000);
  load();
})();
