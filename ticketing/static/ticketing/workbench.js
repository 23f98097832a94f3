// The department workbench: an inbox kept current over the department's websocket, and a ticket panel whose
// actions go through the REST API (session cookie + CSRF header). Plain script, no build step, no framework.
// Every text from the server is put in with textContent, never parsed as HTML.
(() => {
  "use strict";

  const root = document.getElementById("workbench");
  if (!root) return;

  const $ = (selector, scope = document) => scope.querySelector(selector);
  const { el, readJson, ApiError, apiClient } = window.HotlinePage;
  const labels = readJson("workbench-labels");
  const config = readJson("workbench-config");
  const csrfToken = root.dataset.csrf;
  const handlingStates = new Set(config.handling_states);
  const terminalStates = new Set(config.terminal_states);
  const refusedCodes = new Set([4400, 4401, 4403, 4404]);
  // A healthy socket hears a heartbeat every 25 s; after this much silence it is made again.
  const SILENCE_MS = 60000;

  const state = {
    inbox: readJson("workbench-inbox"),
    filter: null,
    newIds: new Set(),
    openId: null,
    detail: null,
    handling: null,
    lastEventId: 0,
    clockOffset: 0,
  };
  state.lastEventId = state.inbox.last_event_id;
  state.clockOffset = Date.parse(state.inbox.now) - Date.now();
  const serverNow = () => Date.now() + state.clockOffset;

  // --- small helpers ----------------------------------------------------------------------------------------

  const timeFormat = new Intl.DateTimeFormat("zh-CN", {
    timeZone: "Asia/Shanghai",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    hour12: false,
  });
  const formatTime = (iso) => (iso ? timeFormat.format(new Date(iso)) : "—");

  function formatSpan(ms) {
    const minutes = Math.max(1, Math.round(Math.abs(ms) / 60000));
    const days = Math.floor(minutes / 1440);
    const hours = Math.floor((minutes % 1440) / 60);
    const rest = minutes % 60;
    if (days) return `${days} 天${hours ? ` ${hours} 小时` : ""}`;
    if (hours) return `${hours} 小时${rest ? ` ${rest} 分钟` : ""}`;
    return `${rest} 分钟`;
  }

  function slaOf(ticket, now) {
    if (ticket.status === "suspended") return "paused";
    if (!ticket.due_at) return "none";
    if (Date.parse(ticket.due_at) <= now) return "overdue";
    if (ticket.warning_at && Date.parse(ticket.warning_at) <= now) return "warning";
    return "ok";
  }

  // --- the API ----------------------------------------------------------------------------------------------

  const FIELD_NAMES = {
    reason: "理由",
    reply_text: "答复内容",
    result: "办理结果",
    working_days: "延期工作日数",
    text: "内容",
    note: "说明",
    unit: "交办单位",
    department: "协办单位",
    file: "文件",
    non_field_errors: "",
  };

  const api = apiClient({ csrfToken, fieldNames: FIELD_NAMES });

  const ticketUrl = (id, rest = "") => `${config.ticket_url}${id}/${rest}`;

  // --- the new-ticket cue -----------------------------------------------------------------------------------

  const soundToggle = $("#sound-toggle");
  const announcer = $("#announcer");
  const newBanner = $("#new-banner");
  let audio = null;

  try {
    soundToggle.checked = window.localStorage.getItem("workbench.sound") !== "off";
  } catch (error) {
    soundToggle.checked = true;
  }
  soundToggle.addEventListener("change", () => {
    try {
      window.localStorage.setItem("workbench.sound", soundToggle.checked ? "on" : "off");
    } catch (error) {
      // Private windows may refuse storage; the choice then lasts for this page only.
    }
    if (soundToggle.checked) unlockAudio();
  });

  // Browsers keep audio silent until the page has been interacted with; the first click or key unlocks it.
  function unlockAudio() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return null;
    if (!audio) audio = new Context();
    if (audio.state === "suspended") audio.resume().catch(() => {});
    return audio;
  }
  document.addEventListener("pointerdown", unlockAudio, { once: true });
  document.addEventListener("keydown", unlockAudio, { once: true });

  function beep() {
    if (!soundToggle.checked) return;
    const context = unlockAudio();
    if (!context) return;
    const start = context.currentTime + 0.01;
    [880, 1320].forEach((frequency, index) => {
      const at = start + index * 0.22;
      const oscillator = context.createOscillator();
      const gain = context.createGain();
      oscillator.type = "sine";
      oscillator.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.25, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.18);
      oscillator.connect(gain);
      gain.connect(context.destination);
      oscillator.start(at);
      oscillator.stop(at + 0.2);
    });
    root.dataset.beeps = String(Number(root.dataset.beeps || 0) + 1);
  }

  const baseTitle = document.title;
  function renderNewBanner() {
    const count = state.newIds.size;
    $("#new-count").textContent = String(count);
    newBanner.hidden = count === 0;
    root.dataset.newTickets = String(count);
    document.title = count ? `（${count}）${baseTitle}` : baseTitle;
  }

  // Says what arrived and beeps; the rows and the banner already show it.
  function announceNew(tickets) {
    const text =
      tickets.length === 1
        ? `收到新派单：${tickets[0].number}，${tickets[0].title}`
        : `收到 ${tickets.length} 件新派单：${tickets.map((t) => t.number).join("、")}`;
    // Emptied first, so that the same words said twice are read twice.
    announcer.textContent = "";
    window.requestAnimationFrame(() => {
      announcer.textContent = text;
    });
    beep();
  }

  $("#new-clear").addEventListener("click", () => {
    state.newIds.clear();
    renderNewBanner();
    renderRows();
    $("#inbox-title").focus();
  });

  // --- the inbox --------------------------------------------------------------------------------------------

  function countKeys() {
    const counts = state.inbox.counts;
    const states = Object.keys(counts).filter((key) => !["total", "warning", "overdue"].includes(key));
    return ["total", ...states, "warning", "overdue"];
  }

  function renderCounts() {
    const group = $("#counts");
    const buttons = countKeys().map((key) => {
      const active = key === "total" ? state.filter === null : state.filter === key;
      const button = el(
        "button",
        {
          type: "button",
          className: ["warning", "overdue"].includes(key) ? key : null,
          "data-filter": key,
          "aria-pressed": active ? "true" : "false",
        },
        labels.count[key] || labels.status[key] || key,
        el("strong", { text: String(state.inbox.counts[key] ?? 0) }),
      );
      return button;
    });
    const focused = document.activeElement && group.contains(document.activeElement) ? document.activeElement.dataset.filter : null;
    group.replaceChildren(...buttons);
    if (focused) group.querySelector(`[data-filter="${focused}"]`)?.focus();
    $("#filter-label").textContent = state.filter ? `（筛选：${labels.count[state.filter] || state.filter}）` : "";
  }

  $("#counts").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-filter]");
    if (!button) return;
    state.filter = button.dataset.filter === "total" ? null : button.dataset.filter;
    renderCounts();
    renderRows();
  });

  function matchesFilter(ticket, now) {
    if (state.filter === null) return true;
    if (state.filter === "warning" || state.filter === "overdue") return slaOf(ticket, now) === state.filter;
    return ticket.status === state.filter;
  }

  function dueCell(ticket, now) {
    const sla = slaOf(ticket, now);
    const cell = el("td");
    if (!ticket.due_at) {
      cell.append(el("span", { className: "due", text: sla === "paused" ? "暂停计时" : "不计时" }));
      if (sla === "paused") cell.append(el("span", { className: "left meta", text: "等待群众，时限暂停" }));
      return cell;
    }
    const left = Date.parse(ticket.due_at) - now;
    cell.append(
      el("span", { className: "due" }, `${labels.deadline[ticket.deadline] || "时限"} ${formatTime(ticket.due_at)}`),
      el(
        "span",
        { className: "left" },
        sla === "overdue" ? el("span", { className: "badge overdue", text: labels.sla.overdue }) : null,
        sla === "warning" ? el("span", { className: "badge warning", text: labels.sla.warning }) : null,
        left > 0 ? `剩余 ${formatSpan(left)}` : `已超期 ${formatSpan(left)}`,
      ),
    );
    return cell;
  }

  function rowFor(ticket, now) {
    const sla = slaOf(ticket, now);
    const classes = [`sla-${sla}`];
    if (state.newIds.has(ticket.id)) classes.push("is-new");
    if (state.openId === ticket.id) classes.push("is-selected");
    const where = [ticket.category, ticket.region].filter(Boolean).join(" · ");
    const lead = ticket.role !== "lead" && ticket.lead_department ? `主办：${ticket.lead_department.name}` : null;
    const unit = ticket.handling_unit ? `承办科室：${ticket.handling_unit.name}` : null;
    return el(
      "tr",
      { className: classes.join(" "), "data-ticket": ticket.id, "data-status": ticket.status },
      el(
        "td",
        {},
        state.newIds.has(ticket.id) ? el("span", { className: "badge new", text: "新" }) : null,
        el("button", {
          type: "button",
          className: "link",
          "data-open": ticket.id,
          "aria-current": state.openId === ticket.id ? "true" : null,
          text: ticket.number,
        }),
      ),
      el(
        "td",
        {},
        ticket.title,
        where || lead || unit ? el("span", { className: "meta", text: ` ${[where, lead, unit].filter(Boolean).join("；")}` }) : null,
      ),
      el(
        "td",
        { className: "status" },
        el("span", { className: "status-text", text: ticket.status_display }),
        " ",
        el("span", { className: "badge", text: labels.role[ticket.role] }),
        ticket.urgency !== "normal" ? el("span", { className: `badge ${ticket.urgency}`, text: ticket.urgency_display }) : null,
      ),
      dueCell(ticket, now),
    );
  }

  function renderRows() {
    const tbody = $("#inbox-rows");
    const focused = document.activeElement && tbody.contains(document.activeElement) ? document.activeElement.dataset.open : null;
    const now = serverNow();
    const tickets = state.inbox.tickets.filter((ticket) => matchesFilter(ticket, now));
    tbody.replaceChildren(...tickets.map((ticket) => rowFor(ticket, now)));
    $("#inbox-empty").hidden = tickets.length > 0;
    $("#inbox-truncated").hidden = !state.inbox.truncated;
    if (focused) tbody.querySelector(`[data-open="${focused}"]`)?.focus();
  }

  $("#inbox-rows").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-open]");
    if (button) openTicket(Number(button.dataset.open));
  });

  let refreshTimer = null;
  let refreshing = false;
  let refreshAgain = false;
  let refreshLive = false;

  // Events come in bursts (a dispatch writes several); one fetch answers a burst.
  function scheduleRefresh(live) {
    refreshLive = refreshLive || live;
    window.clearTimeout(refreshTimer);
    refreshTimer = window.setTimeout(refreshInbox, 150);
  }

  async function refreshInbox() {
    if (refreshing) {
      refreshAgain = true;
      return;
    }
    refreshing = true;
    const live = refreshLive;
    refreshLive = false;
    try {
      const { data } = await api("GET", config.inbox_url);
      const before = new Set(state.inbox.tickets.map((ticket) => ticket.id));
      state.inbox = data;
      state.clockOffset = Date.parse(data.now) - Date.now();
      const listed = new Set(data.tickets.map((ticket) => ticket.id));
      for (const id of [...state.newIds]) if (!listed.has(id)) state.newIds.delete(id);
      const fresh = live ? data.tickets.filter((ticket) => !before.has(ticket.id)) : [];
      for (const ticket of fresh) state.newIds.add(ticket.id);
      renderCounts();
      renderRows();
      renderNewBanner();
      if (fresh.length) announceNew(fresh);
      root.dataset.refreshed = String(Number(root.dataset.refreshed || 0) + 1);
    } catch (error) {
      setConnection(root.dataset.live, `工单列表刷新失败：${error.message}`);
    } finally {
      refreshing = false;
      if (refreshAgain) {
        refreshAgain = false;
        scheduleRefresh(false);
      }
    }
  }

  // --- the live connection ----------------------------------------------------------------------------------

  let socket = null;
  let retries = 0;
  let refusal = "";
  let lastMessageAt = Date.now();

  function setConnection(live, text) {
    root.dataset.live = live;
    $("#connection").textContent = text;
  }

  function connect() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${window.location.host}${config.socket_path}?after=${state.lastEventId}`;
    setConnection(retries ? "reconnecting" : "connecting", "实时连接：正在连接…");
    refusal = "";
    socket = new WebSocket(url);
    socket.addEventListener("message", onMessage);
    socket.addEventListener("close", onClose);
  }

  function onMessage(message) {
    lastMessageAt = Date.now();
    let payload;
    try {
      payload = JSON.parse(message.data);
    } catch (error) {
      return;
    }
    if (payload.type === "catchup.complete") {
      retries = 0;
      state.lastEventId = Math.max(state.lastEventId, payload.last_event_id);
      setConnection("ready", "实时连接：已连接，新派单会自动出现");
      if (payload.truncated) scheduleRefresh(false);
    } else if (payload.type === "error") {
      refusal = payload.detail || "";
    } else if (typeof payload.event_id === "number" && typeof payload.ticket_id === "number") {
      state.lastEventId = Math.max(state.lastEventId, payload.event_id);
      scheduleRefresh(true);
      if (payload.ticket_id === state.openId) schedulePanelRefresh();
    }
  }

  function onClose(event) {
    socket = null;
    if (refusedCodes.has(event.code)) {
      setConnection("refused", `实时连接被拒绝：${refusal || "请刷新页面后重试。"}`);
      return;
    }
    retries += 1;
    const delay = Math.min(30000, 1000 * 2 ** Math.min(retries - 1, 5));
    setConnection("reconnecting", `实时连接已断开，${Math.round(delay / 1000)} 秒后重新连接…`);
    window.setTimeout(connect, delay);
  }

  window.setInterval(() => {
    if (socket && socket.readyState === WebSocket.OPEN && Date.now() - lastMessageAt > SILENCE_MS) socket.close();
  }, 15000);

  // --- the ticket panel -------------------------------------------------------------------------------------

  const panel = $("#panel");
  const panelTitle = $("#panel-title");
  const actionStatus = $("#action-status");
  let panelTimer = null;

  function schedulePanelRefresh() {
    window.clearTimeout(panelTimer);
    panelTimer = window.setTimeout(loadPanel, 150);
  }

  async function openTicket(id) {
    state.openId = id;
    state.newIds.delete(id);
    renderNewBanner();
    renderRows();
    actionStatus.textContent = "";
    for (const box of panel.querySelectorAll(".form-error")) box.hidden = true;
    for (const form of panel.querySelectorAll("form[data-action]")) form.reset();
    panel.hidden = false;
    panel.parentElement.classList.add("has-panel");
    panelTitle.textContent = "正在加载…";
    await loadPanel();
    panelTitle.focus();
  }

  async function loadPanel() {
    const id = state.openId;
    if (id === null) return;
    try {
      const [detail, timeline, handling] = await Promise.all([
        api("GET", ticketUrl(id)),
        api("GET", ticketUrl(id, "timeline/")),
        api("GET", ticketUrl(id, "handling/")),
      ]);
      if (id !== state.openId) return;
      renderPanel(detail.data, timeline.data, handling.data);
    } catch (error) {
      if (id !== state.openId) return;
      renderGone(error);
    }
  }

  function renderGone(error) {
    state.detail = state.handling = null;
    panelTitle.textContent = "工单详情";
    $("#panel-detail").replaceChildren(
      el("p", { className: "form-error", text: error.status === 404 ? "该工单已不在本单位（可能已退回或改派）。" : error.message }),
    );
    for (const form of panel.querySelectorAll("form[data-action]")) form.hidden = true;
    for (const id of ["#assisting-list", "#attachment-list", "#timeline"]) $(id).replaceChildren();
  }

  function detailRow(term, ...value) {
    return [el("dt", { text: term }), el("dd", {}, ...value)];
  }

  function renderDetail(ticket, handling) {
    const caller = ticket.caller_confidential
      ? "来电人要求保密"
      : [ticket.caller_name, ticket.caller_phone].filter(Boolean).join(" ") || "—";
    const assisting = ticket.assisting_departments.map((d) => d.name).join("、") || "无";
    const extension = handling.extension;
    const extensionText = extension.pending
      ? `已申请延期 ${extension.pending.working_days} 个工作日，待审批`
      : `已延期 ${extension.used} 次（最多 ${extension.max_extensions} 次）`;
    const rows = [
      ...detailRow("状态", ticket.status_display),
      ...detailRow("诉求类型", labels.appeal_type[ticket.appeal_type] || ticket.appeal_type),
      ...detailRow("紧急程度", labels.urgency[ticket.urgency] || ticket.urgency),
      ...detailRow("诉求分类", ticket.category ? [ticket.category.parent, ticket.category.name].filter(Boolean).join(" / ") : "—"),
      ...detailRow("所属区域", ticket.region ? ticket.region.name : "—"),
      ...detailRow("地点", ticket.location_text || "—"),
      ...detailRow("来电人", caller),
      ...detailRow("主办单位", ticket.lead_department ? ticket.lead_department.name : "—"),
      ...detailRow("协办单位", assisting),
      ...detailRow("承办科室", handling.handling_unit ? handling.handling_unit.name : "本单位自办"),
      ...detailRow("派单时间", formatTime(ticket.dispatched_at)),
    ];
    if (ticket.status === "dispatched") rows.push(...detailRow("签收时限", formatTime(ticket.accept_due_at)));
    rows.push(...detailRow("答复时限", ticket.status === "suspended" ? `${formatTime(ticket.reply_due_at)}（暂停计时中）` : formatTime(ticket.reply_due_at)));
    if (ticket.return_due_at) rows.push(...detailRow("退单时限", formatTime(ticket.return_due_at)));
    rows.push(...detailRow("延期", extensionText));
    if (ticket.reply_text) {
      rows.push(...detailRow("答复", `${labels.result[ticket.reply_result] || ""} ${ticket.reply_text}`));
    }
    $("#panel-detail").replaceChildren(
      el("dl", { className: "wb-detail" }, ...rows),
      el("h3", { text: "诉求内容" }),
      el("p", { className: "wb-content", text: ticket.content }),
    );
  }

  function showForm(action, visible) {
    const form = panel.querySelector(`form[data-action="${action}"]`);
    if (form.hidden === visible) {
      form.hidden = !visible;
      if (!visible) form.querySelector(".form-error").hidden = true;
    }
  }

  function fillSelect(select, options, selected) {
    // A refresh while someone is choosing keeps their choice, as long as it is still offered.
    const current = select.value;
    if (current && options.some(([value]) => String(value) === current)) selected = current;
    select.replaceChildren(
      ...options.map(([value, text]) => el("option", { value, selected: String(value) === String(selected) }, text)),
    );
  }

  function renderActions(ticket, handling) {
    const allowed = new Set(ticket.allowed_transitions);
    const lead = handling.may_lead;
    const extension = handling.extension;
    const returnOpen = !handling.return_due_at || Date.parse(handling.return_due_at) > serverNow();
    const handing = handlingStates.has(ticket.status);

    showForm("accept", lead && allowed.has("accept"));
    showForm("reply", lead && allowed.has("reply"));
    showForm(
      "request_extension",
      lead && allowed.has("request_extension") && !extension.pending && extension.used < extension.max_extensions,
    );
    showForm("suspend", lead && allowed.has("suspend"));
    showForm("resume", lead && allowed.has("resume"));
    showForm("hand_to_unit", lead && handing && (handling.handing_units.length > 0 || handling.handling_unit !== null));
    showForm("return", lead && allowed.has("return") && returnOpen);
    showForm("assisting_reply", handing && handling.own_assisting_departments.length > 0);
    showForm("note", true);
    showForm("attachment", !terminalStates.has(ticket.status));

    $('[data-slot="extension-rule"]', panel).textContent =
      `单次最多 ${extension.max_working_days} 个工作日，本件还可延期 ${Math.max(0, extension.max_extensions - extension.used)} 次，须经审批。`;
    $("#extension-days").max = String(extension.max_working_days || 60);
    $('[data-slot="return-window"]', panel).textContent = handling.return_due_at
      ? `退单须在 ${formatTime(handling.return_due_at)} 前提出，由热线中心审核。`
      : "退单由热线中心审核。";

    const units = handling.handing_units.map((unit) => [unit.id, `${"　".repeat(unit.depth)}${unit.name}`]);
    if (handling.handling_unit) units.unshift(["", "收回，由本单位自办"]);
    fillSelect($("#hand-unit"), units, handling.handling_unit ? handling.handling_unit.id : "");
    fillSelect(
      $("#assisting-department"),
      handling.own_assisting_departments.map((d) => [d.id, d.name]),
      handling.own_assisting_departments.length ? handling.own_assisting_departments[0].id : "",
    );
  }

  function renderLists(ticket, handling) {
    const replies = handling.assisting_replies.map((part) =>
      el(
        "li",
        {},
        el("strong", { text: part.department.name }),
        el("span", { className: "meta", text: ` ${part.author} ${formatTime(part.created_at)}` }),
        el("p", { className: "wb-text", text: part.text }),
      ),
    );
    $("#assisting-list").replaceChildren(...(replies.length ? replies : [el("li", { className: "meta", text: "暂无协办意见。" })]));
    const files = handling.attachments.map((file) =>
      el(
        "li",
        {},
        el("a", { href: file.url, download: file.name, text: file.name }),
        el("span", {
          className: "meta",
          text: ` ${Math.max(1, Math.round(file.size / 1024))} KB，${file.department ? `${file.department.name} ` : ""}${file.uploaded_by} ${formatTime(file.created_at)}`,
        }),
      ),
    );
    $("#attachment-list").replaceChildren(...(files.length ? files : [el("li", { className: "meta", text: "暂无附件。" })]));
  }

  function describeEvent(event, ticket, handling) {
    const data = event.data || {};
    const parts = [];
    if (event.kind === "deadline") {
      // The return deadline is a window, not a duty: once it passes the ticket can no longer be returned.
      if (data.deadline === "return") parts.push(data.mark === "overdue" ? "退单期限已过，不能再退单" : "退单期限即将结束");
      else parts.push(`${labels.deadline[data.deadline] || ""}${data.mark === "overdue" ? "已超期" : "即将到期"}`);
    }
    if (data.result) parts.push(`办理结果：${labels.result[data.result] || data.result}`);
    if (data.working_days) parts.push(`${data.working_days} 个工作日`);
    if (event.kind === "handed_to_unit") {
      const names = new Map(handling.handing_units.map((unit) => [unit.id, unit.name]));
      if (handling.handling_unit) names.set(handling.handling_unit.id, handling.handling_unit.name);
      parts.push(data.unit ? `交给 ${names.get(data.unit) || "下级单位"}` : "收回由主办单位自办");
    }
    if (event.kind === "attachment") {
      const file = handling.attachments.find((item) => item.id === data.attachment);
      if (file) parts.push(file.name);
    }
    for (const key of ["reason", "note", "text", "reply_text"]) {
      if (typeof data[key] === "string" && data[key].trim()) parts.push(data[key]);
    }
    return parts.join("；");
  }

  function renderTimeline(events, ticket, handling) {
    const items = [...events].reverse().map((event) => {
      const what = labels.transition[event.kind] || labels.event[event.kind] || "其他记录";
      const detail = describeEvent(event, ticket, handling);
      return el(
        "li",
        {},
        el("span", { className: "what", text: what }),
        el("span", { className: "meta", text: `${formatTime(event.created_at)} ${event.actor ? event.actor.name : "系统"}` }),
        detail ? el("p", { className: "wb-text", text: detail }) : null,
      );
    });
    $("#timeline").replaceChildren(...items);
  }

  function renderPanel(ticket, events, handling) {
    state.detail = ticket;
    state.handling = handling;
    panelTitle.textContent = `${ticket.number} ${ticket.title}`;
    panel.dataset.ticket = String(ticket.id);
    panel.dataset.status = ticket.status;
    renderDetail(ticket, handling);
    renderActions(ticket, handling);
    renderLists(ticket, handling);
    renderTimeline(events, ticket, handling);
  }

  // --- actions ----------------------------------------------------------------------------------------------

  const value = (form, name) => form.elements[name].value.trim();
  const transition = (name, body) => (id) => api("POST", ticketUrl(id, `transitions/${name}/`), body);

  const ACTIONS = {
    accept: { done: "已签收，请在答复时限内办理。", run: (id) => transition("accept", {})(id) },
    reply: {
      done: "已提交答复，等待热线中心审核。",
      run: (id, form) => transition("reply", { result: value(form, "result"), reply_text: value(form, "reply_text") })(id),
    },
    request_extension: {
      done: "延期申请已提交，等待审批。",
      run: (id, form) =>
        transition("request_extension", { working_days: Number(value(form, "working_days")), reason: value(form, "reason") })(id),
    },
    suspend: { done: "已暂停计时。", run: (id, form) => transition("suspend", { reason: value(form, "reason") })(id) },
    resume: { done: "已恢复计时，答复时限已顺延。", run: (id, form) => transition("resume", { note: value(form, "note") })(id) },
    return: { done: "退单申请已提交，等待热线中心审核。", run: (id, form) => transition("return", { reason: value(form, "reason") })(id) },
    hand_to_unit: {
      done: "交办已更新。",
      run: (id, form) => {
        const unit = value(form, "unit");
        return api("POST", ticketUrl(id, "handling-unit/"), { unit: unit ? Number(unit) : null, note: value(form, "note") });
      },
    },
    assisting_reply: {
      done: "协办意见已提交。",
      run: (id, form) =>
        api("POST", ticketUrl(id, "assisting-replies/"), { department: Number(value(form, "department")), text: value(form, "text") }),
    },
    note: { done: "备注已添加。", run: (id, form) => api("POST", ticketUrl(id, "notes/"), { text: value(form, "text") }) },
    attachment: {
      done: "附件已上传。",
      run: (id, form) => {
        const body = new FormData();
        body.append("file", form.elements.file.files[0]);
        return api("POST", ticketUrl(id, "attachments/"), body);
      },
    },
  };

  function labelOf(control) {
    const label = control.id ? panel.querySelector(`label[for="${control.id}"]`) : null;
    return label ? label.textContent.replace(/（.*?）/g, "").trim() : control.name;
  }

  // The forms say what is missing in Chinese before anything is sent; the server checks everything again.
  function missing(form) {
    for (const control of form.querySelectorAll("[required]")) {
      const empty = control.type === "file" ? control.files.length === 0 : control.value.trim() === "";
      if (empty) return control;
    }
    return null;
  }

  panel.addEventListener("submit", async (event) => {
    const form = event.target.closest("form[data-action]");
    if (!form) return;
    event.preventDefault();
    const id = state.openId;
    const action = ACTIONS[form.dataset.action];
    const errorBox = form.querySelector(".form-error");
    const button = form.querySelector("button[type=submit]");
    errorBox.hidden = true;
    actionStatus.textContent = "";
    const empty = missing(form);
    if (empty) {
      errorBox.textContent = `请填写「${labelOf(empty)}」。`;
      errorBox.hidden = false;
      empty.focus();
      return;
    }
    button.disabled = true;
    try {
      await action.run(id, form);
      form.reset();
      actionStatus.textContent = action.done;
      await loadPanel();
      scheduleRefresh(false);
      // The form may have gone with the state it belonged to; focus then stays in the panel.
      if (form.hidden) panelTitle.focus();
    } catch (error) {
      errorBox.textContent = error.message;
      errorBox.hidden = false;
    } finally {
      button.disabled = false;
    }
  });

  // --- start ------------------------------------------------------------------------------------------------

  renderCounts();
  renderRows();
  renderNewBanner();
  // Remaining times and the warning and overdue marks move with the clock, between events too.
  window.setInterval(renderRows, 30000);
  connect();
})();
