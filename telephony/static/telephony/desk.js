// The agent desk: the call at this seat over ws/agent/ (call, transcript, suggestions, ticket events), the ticket
// form that the transcript fills and the agent corrects, and one action (and one key) each to finish the ticket.
// Plain script, no build step. Every text from the server goes in with textContent; the only markup taken from
// the server is the <mark> of search snippets, rebuilt here as elements from otherwise escaped text.
(() => {
  "use strict";

  const root = document.getElementById("desk");
  if (!root) return;

  const $ = (selector, scope = document) => scope.querySelector(selector);
  const { el, readJson, ApiError, apiClient } = window.HotlinePage;
  const config = readJson("desk-config");
  const labels = readJson("desk-labels");
  const reference = readJson("desk-reference");
  const csrfToken = root.dataset.csrf;
  const terminalStates = new Set(config.terminal_states);
  const editableStates = new Set(["draft", "pending_dispatch"]);
  const refusedCodes = new Set([4400, 4401, 4403, 4404]);
  const SILENCE_MS = 60000;
  const SAVE_DELAY_MS = 700;
  const FIELDS = ["appeal_type", "urgency", "title", "content", "region", "category", "location_text", "caller_phone", "caller_name"];
  // Shown masked by the API: the input is for a new value only, and empty means "keep what is registered".
  const MASKED_FIELDS = new Set(["caller_phone", "caller_name"]);

  const state = {
    agent: config.state,
    call: null,
    segments: new Map(),
    ticket: null,
    dirty: new Map(),
    saving: null,
    answers: [],
    article: null,
    routing: null,
    leadByAgent: false,
    mergeOptions: new Map(),
    busy: false,
    clockOffset: 0,
    lastEventId: null,
  };
  const serverNow = () => Date.now() + state.clockOffset;

  // --- small helpers ----------------------------------------------------------------------------------------

  const timeFormat = new Intl.DateTimeFormat("zh-CN", {
    timeZone: "Asia/Shanghai",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    hour12: false,
  });
  const formatTime = (iso) => (iso ? timeFormat.format(new Date(iso)) : "—");

  function formatDuration(ms) {
    const seconds = Math.max(0, Math.floor(ms / 1000));
    const minutes = Math.floor(seconds / 60);
    return `${String(minutes).padStart(2, "0")}:${String(seconds % 60).padStart(2, "0")}`;
  }

  const ENTITIES = { amp: "&", lt: "<", gt: ">", quot: '"', "#x27": "'", "#39": "'" };
  const decodeEntities = (text) => text.replace(/&(amp|lt|gt|quot|#x27|#39);/g, (_, name) => ENTITIES[name]);

  // A search snippet is escaped text with <mark>…</mark> around the matched words: those two tags become
  // elements, everything else stays text.
  function snippetNodes(snippet) {
    const nodes = [];
    let marked = false;
    for (const part of String(snippet || "").split(/(<mark>|<\/mark>)/)) {
      if (part === "<mark>") marked = true;
      else if (part === "</mark>") marked = false;
      else if (part) {
        const text = decodeEntities(part);
        nodes.push(marked ? el("mark", { text }) : document.createTextNode(text));
      }
    }
    return nodes;
  }

  const announcer = $("#announcer");
  function announce(text) {
    // Emptied first, so that the same words said twice are read twice.
    announcer.textContent = "";
    window.requestAnimationFrame(() => {
      announcer.textContent = text;
    });
  }

  // --- the API ----------------------------------------------------------------------------------------------

  const FIELD_NAMES = {
    appeal_type: "诉求类型",
    urgency: "紧急程度",
    title: "标题",
    content: "诉求内容",
    region: "所属区域",
    category: "诉求分类",
    location_text: "详细地点",
    caller_phone: "联系电话",
    caller_name: "来电人姓名",
    reply_text: "答复内容",
    lead_department: "主办单位",
    assisting_departments: "协办单位",
    target: "转接去向",
    into_ticket: "并入工单",
    note: "办理说明",
    state: "坐席状态",
    non_field_errors: "",
  };

  const api = apiClient({ csrfToken, fieldNames: FIELD_NAMES, onDate: (date) => (state.clockOffset = date - Date.now()) });

  // --- reference data into the form -------------------------------------------------------------------------

  const form = $("#ticket-form");
  const field = (name) => form.elements.namedItem(name);

  function fillReferenceOptions() {
    const region = field("region");
    const byId = new Map(reference.regions.map((r) => [r.id, r]));
    const depth = (r) => {
      let n = 0;
      for (let p = byId.get(r.parent); p; p = byId.get(p.parent)) n += 1;
      return n;
    };
    // Parents before children, each child under its parent.
    const children = new Map();
    for (const r of reference.regions) {
      const key = byId.has(r.parent) ? r.parent : null;
      if (!children.has(key)) children.set(key, []);
      children.get(key).push(r);
    }
    const walk = (key) => {
      for (const r of children.get(key) || []) {
        region.append(el("option", { value: r.id, text: `${"　".repeat(depth(r))}${r.name}` }));
        walk(r.id);
      }
    };
    walk(null);

    const category = field("category");
    for (const top of reference.categories) {
      const group = el("optgroup", { label: top.name });
      group.append(el("option", { value: top.id, text: top.name }));
      for (const child of top.children) group.append(el("option", { value: child.id, text: `${top.name} / ${child.name}` }));
      category.append(group);
    }

    const lead = $("#lead-department");
    const assisting = $("#assisting-departments");
    for (const d of reference.departments) {
      lead.append(el("option", { value: d.id, text: d.name }));
      assisting.append(el("option", { value: d.id, text: d.name }));
    }
  }

  function ensureOption(select, id, name) {
    if (id === null || id === undefined) return;
    if (!select.querySelector(`option[value="${id}"]`)) select.append(el("option", { value: id, text: name }));
  }

  // --- the agent's state ------------------------------------------------------------------------------------

  const stateSelect = $("#agent-state");
  const stateNote = $("#state-note");
  let wrapUpTimer = null;
  let wrapUpEnding = false;

  function renderStateNote() {
    const agent = state.agent;
    let text = "";
    if (agent.state === "on_call") text = "通话中，挂机后进入话后处理。";
    else if (agent.state === "available") text = "空闲，等待来电。";
    else if (agent.state === "away") text = "暂离，不分配来电。";
    else if (agent.state === "wrap_up") {
      if (agent.wrap_up_ends_at) {
        const left = Date.parse(agent.wrap_up_ends_at) - serverNow();
        text = left > 0 ? `话后处理，${Math.ceil(left / 1000)} 秒后自动置闲。` : "话后处理结束，正在置闲…";
      } else text = "话后处理。";
    }
    stateNote.textContent = text;
  }

  function applyAgentState(agent) {
    state.agent = agent;
    root.dataset.state = agent.state;
    stateSelect.value = agent.state;
    stateSelect.disabled = agent.state === "on_call";
    window.clearInterval(wrapUpTimer);
    wrapUpTimer = null;
    if (agent.state === "wrap_up" && agent.wrap_up_ends_at) {
      wrapUpTimer = window.setInterval(() => {
        renderStateNote();
        // The seat's wrap-up is over: say so to the server, which keeps the same rule.
        if (Date.parse(agent.wrap_up_ends_at) + 1000 <= serverNow() && !wrapUpEnding) {
          wrapUpEnding = true;
          setAgentState("available").finally(() => {
            wrapUpEnding = false;
          });
        }
      }, 1000);
    }
    renderStateNote();
  }

  async function setAgentState(value) {
    try {
      const { data } = await api("POST", config.urls.my_state, { state: value });
      applyAgentState(data);
    } catch (error) {
      stateNote.textContent = error.message;
      stateSelect.value = state.agent.state;
    }
  }

  stateSelect.addEventListener("change", () => setAgentState(stateSelect.value));

  // One reading of the state at a time: events come in bursts (a call starting says call.started and
  // agent.state), and two readings racing would both open the same call afresh.
  let stateLoading = null;
  let stateAgain = false;
  function loadState() {
    if (stateLoading) {
      stateAgain = true;
      return stateLoading;
    }
    stateLoading = (async () => {
      do {
        stateAgain = false;
        await loadStateOnce();
      } while (stateAgain);
    })().finally(() => {
      stateLoading = null;
    });
    return stateLoading;
  }

  async function loadStateOnce() {
    try {
      const { data } = await api("GET", config.urls.my_state);
      applyAgentState(data);
      if (data.call && (!state.call || state.call.id !== data.call.id)) await openCall(data.call.id);
      else if (state.call) await refreshCall();
    } catch (error) {
      setConnection(root.dataset.live, `状态刷新失败：${error.message}`);
    }
  }

  // --- the call ---------------------------------------------------------------------------------------------

  const callCard = $("#call-card");
  let durationTimer = null;

  function resetForCall() {
    state.segments.clear();
    state.ticket = null;
    state.dirty.clear();
    state.answers = [];
    state.article = null;
    state.routing = null;
    state.leadByAgent = false;
    state.mergeOptions.clear();
    $("#transcript").replaceChildren();
    $("#partial").textContent = "";
    $("#alerts").replaceChildren();
    $("#banner-emergency").hidden = true;
    $("#banner-legal").hidden = true;
    $("#reply-text").value = "";
    $("#action-note").value = "";
    $("#call-caller").textContent = "";
    $("#lead-department").value = "";
    for (const option of $("#assisting-departments").options) option.selected = false;
    $("#emergency-target").value = "";
    $("#legal-target").value = "";
    $("#action-status").textContent = "";
    hideActionError();
    for (const name of FIELDS) {
      const input = field(name);
      input.value = name === "appeal_type" ? "inquiry" : name === "urgency" ? "normal" : "";
      input.classList.remove("is-filled", "is-edited");
    }
    $("#phone-current").textContent = "留空则沿用已登记号码。";
    $("#name-current").textContent = "";
    renderTicketHeader();
    renderAnswers([]);
    renderRouting(null);
    renderMergeOptions();
  }

  async function openCall(id) {
    const { data } = await api("GET", `${config.urls.calls}${id}/`);
    const fresh = !state.call || state.call.id !== data.id;
    if (fresh) resetForCall();
    state.call = data;
    root.dataset.call = String(data.id);
    for (const segment of data.segments) addSegment(segment);
    renderCall();
    if (fresh) {
      const previous = data.previous_tickets.length ? `，历史工单 ${data.previous_tickets.length} 件` : "";
      announce(`新来电：${data.hotline_line} 热线，号码 ${data.caller_masked || "未知"}${previous}`);
      callCard.classList.add("is-ringing");
    }
    if (data.ticket && (!state.ticket || state.ticket.id !== data.ticket)) await loadTicket(data.ticket);
    renderTicketHeader();
  }

  async function refreshCall() {
    if (!state.call) return;
    let data;
    try {
      ({ data } = await api("GET", `${config.urls.calls}${state.call.id}/`));
    } catch (error) {
      setConnection(root.dataset.live, `通话刷新失败：${error.message}`);
      return;
    }
    if (!state.call || state.call.id !== data.id) return;
    state.call = data;
    for (const segment of data.segments) addSegment(segment);
    renderCall();
    if (data.ticket && (!state.ticket || state.ticket.id !== data.ticket)) await loadTicket(data.ticket);
    renderTicketHeader();
  }

  function renderCall() {
    const call = state.call;
    $("#call-empty").hidden = Boolean(call);
    $("#call-facts").hidden = !call;
    if (!call) return;
    callCard.dataset.status = call.status;
    if (call.status !== "ringing") callCard.classList.remove("is-ringing");
    $("#call-line").textContent = `${call.hotline_line}`;
    if (!$("#call-caller").textContent.includes("已留痕")) $("#call-caller").textContent = call.caller_masked || "未显示号码";
    $("#call-status").textContent = labels.call_status[call.status] || call.status;
    const previous = $("#previous-tickets");
    previous.replaceChildren(
      ...call.previous_tickets.map((t) =>
        el(
          "li",
          { "data-ticket": t.id },
          el("span", { className: "number", text: t.number }),
          " ",
          t.title,
          " ",
          el("span", { className: "badge", text: labels.status[t.status] || t.status }),
          el("span", { className: "meta", text: ` ${formatTime(t.created_at)}` }),
        ),
      ),
    );
    $("#previous-empty").hidden = call.previous_tickets.length > 0;
    for (const t of call.previous_tickets) {
      if (!terminalStates.has(t.status)) addMergeOption(t.id, `${t.number} ${t.title}（来电人历史工单）`);
    }
    renderDuration();
    window.clearInterval(durationTimer);
    if (call.status !== "ended") durationTimer = window.setInterval(renderDuration, 1000);
  }

  function renderDuration() {
    const call = state.call;
    if (!call) return;
    const start = Date.parse(call.answered_at || call.started_at);
    const end = call.ended_at ? Date.parse(call.ended_at) : serverNow();
    $("#call-duration").textContent = call.status === "ended" ? `已挂机，通话 ${formatDuration(end - start)}` : formatDuration(end - start);
  }

  function addSegment(segment) {
    const key = String(segment.start_ms);
    if (state.segments.has(key)) return;
    state.segments.set(key, segment);
    const list = $("#transcript");
    const item = el(
      "li",
      { "data-start": segment.start_ms },
      el("span", { className: "at", text: formatDuration(segment.start_ms) }),
      " ",
      segment.text,
    );
    // In time order, whichever order they arrive in (live and from the call's detail).
    const after = [...list.children].find((li) => Number(li.dataset.start) > segment.start_ms);
    list.insertBefore(item, after || null);
    $("#partial").textContent = "";
    list.parentElement.scrollTop = list.parentElement.scrollHeight;
  }

  function addAlert(payload) {
    const banner = el("div", { className: "dk-banner emergency", role: "alert" }, el("strong", { text: "紧急情况：" }), payload.text);
    $("#alerts").append(banner);
    const target = (payload.text.match(/\b(110|119|120|122)\b/) || [])[1];
    const select = $("#emergency-target");
    if (target && !select.value) select.value = target;
  }

  // --- the ticket -------------------------------------------------------------------------------------------

  function renderTicketHeader() {
    const ticket = state.ticket;
    root.dataset.ticket = ticket ? String(ticket.id) : "";
    root.dataset.ticketStatus = ticket ? ticket.status : "";
    $("#ticket-number").textContent = ticket ? ticket.number : "";
    const status = $("#ticket-status");
    if (ticket) {
      const note = ticket.status === "draft" ? "（受理中，修改会自动保存）" : "";
      status.textContent = `状态：${ticket.status_display}${note}`;
    } else if (state.call) {
      status.textContent = "通话内容出现后会自动生成受理中工单；也可以先填写再点“保存为工单”。";
    }
    $("#create-ticket").hidden = !(state.call && !ticket);
    $("#reveal-contact").hidden = !(state.call && ticket && ticket.caller_phone);
    const editable = !ticket || editableStates.has(ticket.status);
    for (const name of FIELDS) field(name).disabled = !editable || (!state.call && !ticket);
    for (const button of document.querySelectorAll("[data-do]")) button.disabled = state.busy;
  }

  function formValue(name) {
    return field(name).value;
  }

  function serverValue(ticket, name) {
    if (name === "region") return ticket.region ? String(ticket.region.id) : "";
    if (name === "category") return ticket.category ? String(ticket.category.id) : "";
    return ticket[name] ?? "";
  }

  // Shows the ticket as the server has it, except where the agent is typing or has changes not yet saved.
  // A value that changed without the agent is the filler's: it is marked 智能填单.
  function applyTicket(ticket) {
    const first = !state.ticket || state.ticket.id !== ticket.id;
    state.ticket = ticket;
    if (ticket.region) ensureOption(field("region"), ticket.region.id, ticket.region.name);
    if (ticket.category) ensureOption(field("category"), ticket.category.id, ticket.category.name);
    for (const name of FIELDS) {
      const input = field(name);
      if (MASKED_FIELDS.has(name)) continue;
      if (state.dirty.has(name) || document.activeElement === input) continue;
      const value = String(serverValue(ticket, name));
      if (input.value !== value) {
        input.value = value;
        if (!input.classList.contains("is-edited")) input.classList.add("is-filled");
      }
    }
    $("#phone-current").textContent = ticket.caller_phone ? `已登记：${ticket.caller_phone}（留空则沿用）` : "未登记联系电话。";
    $("#name-current").textContent = ticket.caller_name ? `已登记：${ticket.caller_name}` : "";
    renderTicketHeader();
    if (first) loadSuggestionsForTicket();
  }

  async function loadTicket(id) {
    try {
      const { data } = await api("GET", `${config.urls.tickets}${id}/`);
      applyTicket(data);
    } catch (error) {
      showFormError(error.message);
    }
  }

  let ticketTimer = null;
  function scheduleTicketRefresh() {
    window.clearTimeout(ticketTimer);
    ticketTimer = window.setTimeout(() => state.ticket && loadTicket(state.ticket.id), 120);
  }

  function showFormError(text) {
    const box = $("#form-error");
    box.textContent = text;
    box.hidden = !text;
  }

  function toApi(name, value) {
    if (name === "region" || name === "category") return value ? Number(value) : null;
    return value;
  }

  let saveTimer = null;

  function onEdit(event) {
    const name = event.target.name;
    if (!FIELDS.includes(name)) return;
    state.dirty.set(name, formValue(name));
    event.target.classList.remove("is-filled");
    event.target.classList.add("is-edited");
    window.clearTimeout(saveTimer);
    saveTimer = window.setTimeout(save, event.type === "change" ? 0 : SAVE_DELAY_MS);
  }
  form.addEventListener("input", onEdit);
  form.addEventListener("change", onEdit);
  // A field left while the server changed it meanwhile shows the server's value once it is not being typed in.
  form.addEventListener("focusout", () => {
    if (state.ticket && !state.dirty.size) window.setTimeout(() => state.ticket && applyTicket(state.ticket), 0);
  });

  function bodyFromDirty(sent) {
    const body = {};
    for (const [name, value] of sent) {
      // An emptied masked field means "keep the registered one".
      if (MASKED_FIELDS.has(name) && !value.trim()) continue;
      body[name] = toApi(name, value);
    }
    return body;
  }

  async function save() {
    window.clearTimeout(saveTimer);
    if (!state.ticket || !state.dirty.size || !editableStates.has(state.ticket.status)) return true;
    if (state.saving) await state.saving;
    if (!state.dirty.size) return true;
    const sent = new Map(state.dirty);
    const body = bodyFromDirty(sent);
    const done = () => {
      for (const [name, value] of sent) if (state.dirty.get(name) === value) state.dirty.delete(name);
    };
    if (!Object.keys(body).length) {
      done();
      return true;
    }
    $("#save-state").textContent = "正在保存…";
    state.saving = api("PATCH", `${config.urls.tickets}${state.ticket.id}/`, body)
      .then(({ data }) => {
        done();
        for (const name of MASKED_FIELDS) if (name in body && !state.dirty.has(name)) field(name).value = "";
        showFormError("");
        applyTicket(data);
        $("#save-state").textContent = `已保存 ${timeFormat.format(new Date())}`;
        return true;
      })
      .catch((error) => {
        showFormError(error.message);
        $("#save-state").textContent = "未保存";
        return false;
      })
      .finally(() => {
        state.saving = null;
      });
    return state.saving;
  }

  // Everything typed is on the server before an action completes the ticket.
  async function flush() {
    for (let round = 0; round < 3 && state.dirty.size; round += 1) {
      if (!(await save())) return false;
    }
    return !state.dirty.size;
  }

  $("#create-ticket").addEventListener("click", async () => {
    if (!state.call) return;
    const body = {};
    for (const name of FIELDS) {
      const value = formValue(name);
      if (value !== "" || !MASKED_FIELDS.has(name)) body[name] = toApi(name, value);
    }
    if (!String(body.title || "").trim() || !String(body.content || "").trim()) {
      showFormError("请填写「标题」和「诉求内容」。");
      field(String(body.title || "").trim() ? "content" : "title").focus();
      return;
    }
    try {
      const { data } = await api("POST", `${config.urls.calls}${state.call.id}/ticket/`, body);
      state.dirty.clear();
      showFormError("");
      await loadTicket(data.id);
    } catch (error) {
      if (error.data && error.data.code === "call_has_ticket") await refreshCall();
      else showFormError(error.message);
    }
  });

  // The full number only when needed (a call back, a number to confirm), and every look is on the ticket's trail.
  $("#reveal-contact").addEventListener("click", async () => {
    if (!state.ticket) return;
    try {
      const { data } = await api("POST", `${config.urls.tickets}${state.ticket.id}/contact/`);
      $("#call-caller").textContent = `联系电话 ${data.caller_phone}（已留痕）`;
      $("#reveal-contact").hidden = true;
    } catch (error) {
      showFormError(error.message);
    }
  });

  // --- suggestions ------------------------------------------------------------------------------------------

  function renderAnswers(articles) {
    state.answers = articles;
    const list = $("#answers");
    list.replaceChildren(
      ...articles.map((article) => {
        const id = `answer-${article.id}`;
        return el(
          "li",
          { className: "dk-answer", "data-article": article.id },
          el("input", {
            type: "radio",
            name: "answer",
            id,
            value: article.id,
            checked: state.article === article.id,
            "aria-describedby": `${id}-snippet`,
          }),
          el("label", { for: id }, article.title, " ", el("span", { className: "badge", text: labels.article_kind[article.reason] || article.reason })),
          el("p", { className: "dk-snippet", id: `${id}-snippet` }, ...snippetNodes(article.snippet)),
        );
      }),
    );
    $("#answers-empty").hidden = articles.length > 0;
  }

  $("#answers").addEventListener("change", async (event) => {
    if (event.target.name !== "answer") return;
    const id = Number(event.target.value);
    state.article = id;
    try {
      const { data } = await api("GET", `${config.urls.articles}${id}/`);
      const parts = [];
      for (const [name, label] of Object.entries(labels.article_answer_fields)) {
        const value = String(data[name] || "").trim();
        if (value) parts.push(label ? `${label}：${value}` : value);
      }
      $("#reply-text").value = parts.join("\n");
      announce(`已选用「${data.title}」，答复内容已填入，按 Alt+1 即时答复。`);
    } catch (error) {
      showActionError(error.message);
    }
  });

  function renderRouting(payload) {
    state.routing = payload;
    const list = $("#routing");
    const outcome = $("#routing-outcome");
    if (!payload) {
      list.replaceChildren();
      outcome.textContent = "通话内容出现后，这里会给出派单建议和理由。";
      renderDuplicates([]);
      return;
    }
    const rules = payload.rules.length ? `（规则：${payload.rules.join("、")}）` : "";
    outcome.textContent = `${labels.outcome[payload.outcome] || "建议"}${rules}`;
    list.replaceChildren(
      ...payload.departments.map((d, index) =>
        el(
          "li",
          { "data-department": d.id },
          el("strong", { text: d.title }),
          el("span", { className: "meta", text: ` 置信度 ${Math.round(d.score * 100)}%` }),
          el("p", { className: "dk-reason", text: d.reason || "（无说明）" }),
          el("button", {
            type: "button",
            className: "plain",
            "data-lead": d.id,
            "aria-label": `设为主办：${d.title}`,
            text: index === 0 ? "设为主办（推荐）" : "设为主办",
          }),
        ),
      ),
    );
    const lead = $("#lead-department");
    const best = payload.departments[0];
    if (best && !state.leadByAgent && ["auto_dispatched", "preselected", "manual"].includes(payload.outcome)) {
      ensureOption(lead, best.id, best.title);
      lead.value = String(best.id);
    }
    const emergency = $("#banner-emergency");
    if (payload.outcome === "emergency" && payload.external_target) {
      emergency.replaceChildren(el("strong", { text: `紧急情况，请立即转接 ${payload.external_target}。` }), " ", payload.script);
      emergency.hidden = false;
      $("#emergency-target").value = payload.external_target;
    }
    const legal = $("#banner-legal");
    if (payload.outcome === "legal_route" && payload.external_target) {
      const name = labels.legal_targets[payload.external_target] || payload.external_target;
      legal.replaceChildren(el("strong", { text: `请告知法定途径：${name}。` }), " ", payload.script);
      legal.hidden = false;
      $("#legal-target").value = payload.external_target;
      if (!$("#action-note").value) $("#action-note").value = payload.script;
    }
    renderDuplicates(payload.duplicates);
  }

  $("#routing").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-lead]");
    if (!button) return;
    state.leadByAgent = true;
    $("#lead-department").value = button.dataset.lead;
    $("#lead-department").focus();
  });
  $("#lead-department").addEventListener("change", () => {
    state.leadByAgent = true;
  });

  function renderDuplicates(duplicates) {
    $("#duplicates").replaceChildren(
      ...duplicates.map((d) =>
        el(
          "li",
          { "data-duplicate": d.id },
          d.title,
          el("span", { className: "meta", text: ` ${d.reason}` }),
          " ",
          el("button", { type: "button", className: "plain", "data-merge": d.id, "aria-label": `设为并单目标：${d.title}`, text: "设为并单目标" }),
        ),
      ),
    );
    $("#duplicates-empty").hidden = duplicates.length > 0;
    for (const d of duplicates) addMergeOption(d.id, `${d.title}（疑似重复）`);
    if (duplicates.length && !$("#merge-target").value) $("#merge-target").value = String(duplicates[0].id);
  }

  function addMergeOption(id, label) {
    if (!id || (state.ticket && id === state.ticket.id)) return;
    if (!state.mergeOptions.has(id)) state.mergeOptions.set(id, label);
    renderMergeOptions();
  }

  function renderMergeOptions() {
    const select = $("#merge-target");
    const current = select.value;
    select.replaceChildren(
      el("option", { value: "", text: "请选择" }),
      ...[...state.mergeOptions].map(([id, label]) => el("option", { value: id, text: label })),
    );
    if (state.mergeOptions.has(Number(current))) select.value = current;
  }

  function chooseMerge(id, label) {
    addMergeOption(id, label);
    $("#merge-target").value = String(id);
    $("#merge-target").focus();
  }

  $("#duplicates").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-merge]");
    if (button) chooseMerge(Number(button.dataset.merge), button.parentElement.firstChild.textContent);
  });

  // A page opened (or reconnected) in the middle of a call asks for what the live events already said.
  async function loadSuggestionsForTicket() {
    if (!state.ticket) return;
    try {
      const { data } = await api("POST", config.urls.suggestions, { ticket: state.ticket.id });
      if (!state.answers.length) {
        renderAnswers(data.map((a) => ({ id: a.article_id, title: a.title, score: a.score, reason: a.kind, snippet: a.snippet })));
      }
    } catch (error) {
      // Search may be down; the live suggestions still come with the next words.
    }
    try {
      const { data } = await api("GET", `${config.urls.routing}${state.ticket.id}/duplicates/`);
      if (Array.isArray(data) && data.length && !(state.routing && state.routing.duplicates.length)) {
        renderDuplicates(data.map((d) => ({ id: d.ticket_id, title: `${d.number} ${d.title}`, reason: d.reason, score: d.score })));
      }
    } catch (error) {
      // Duplicates are a hint; without them the desk works.
    }
  }

  // --- actions ----------------------------------------------------------------------------------------------

  function showActionError(text, focus) {
    const box = $("#action-error");
    box.textContent = text;
    box.hidden = !text;
    if (focus) focus.focus();
  }
  const hideActionError = () => showActionError("");

  const ACTIONS = {
    instant_reply: {
      path: "instant-reply",
      body() {
        const reply = $("#reply-text").value.trim();
        if (!reply) return { error: "请填写「答复内容」，或选用一条知识库答案。", focus: $("#reply-text") };
        return { body: { reply_text: reply, article: state.article } };
      },
    },
    dispatch: {
      path: "dispatch",
      body() {
        const lead = $("#lead-department").value;
        if (!lead) return { error: "请选择「主办单位」。", focus: $("#lead-department") };
        const assisting = [...$("#assisting-departments").selectedOptions].map((o) => Number(o.value)).filter((id) => id !== Number(lead));
        return { body: { lead_department: Number(lead), assisting_departments: assisting, note: $("#action-note").value.trim() } };
      },
    },
    transfer: {
      path: "transfer",
      body() {
        const target = $("#emergency-target").value;
        if (!target) return { error: "请选择紧急转接去向（110/119/120/122）。", focus: $("#emergency-target") };
        return { body: { target, note: $("#action-note").value.trim() } };
      },
    },
    legal: {
      path: "transfer",
      body() {
        const target = $("#legal-target").value;
        if (!target) return { error: "请选择法定途径。", focus: $("#legal-target") };
        return { body: { target, note: $("#action-note").value.trim() } };
      },
    },
    merge: {
      path: "merge",
      body() {
        const into = $("#merge-target").value;
        if (!into) return { error: "请选择要并入的工单（疑似重复件、来电人历史工单或查询结果）。", focus: $("#merge-target") };
        return { body: { into_ticket: Number(into), note: $("#action-note").value.trim() } };
      },
    },
  };

  async function perform(name) {
    const action = ACTIONS[name];
    if (!action || state.busy) return;
    hideActionError();
    if (!state.ticket) {
      showActionError("还没有工单：请等待智能填单生成，或填写后点“保存为工单”。", state.call ? $("#create-ticket") : null);
      return;
    }
    if (!editableStates.has(state.ticket.status)) {
      showActionError(`工单当前状态为「${state.ticket.status_display}」，已不能再办理。`);
      return;
    }
    const built = action.body();
    if (built.error) {
      showActionError(built.error, built.focus);
      return;
    }
    state.busy = true;
    renderTicketHeader();
    const button = document.querySelector(`[data-do="${name}"]`);
    try {
      if (!(await flush())) {
        showActionError("工单内容未能保存，请先改正上方表单中的错误。", $("#ticket-title"));
        return;
      }
      const { data } = await api("POST", `${config.urls.desk}${state.ticket.id}/${action.path}/`, built.body);
      $("#action-status").textContent = data.message;
      root.dataset.outcome = data.outcome;
      await loadTicket(data.id);
      scheduleMine();
    } catch (error) {
      showActionError(error.message, button);
    } finally {
      state.busy = false;
      renderTicketHeader();
    }
  }

  for (const button of document.querySelectorAll("[data-do]")) {
    button.addEventListener("click", () => perform(button.dataset.do));
  }

  const SHORTCUTS = {
    Digit1: "instant_reply",
    Digit2: "dispatch",
    Digit3: "transfer",
    Digit4: "legal",
    Digit5: "merge",
    Numpad1: "instant_reply",
    Numpad2: "dispatch",
    Numpad3: "transfer",
    Numpad4: "legal",
    Numpad5: "merge",
  };
  document.addEventListener("keydown", (event) => {
    if (!event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    const name = SHORTCUTS[event.code];
    if (!name) return;
    event.preventDefault();
    perform(name);
  });

  // --- the agent's own tickets and the search ---------------------------------------------------------------

  function ticketRow(ticket, extra) {
    return el(
      "tr",
      { "data-ticket": ticket.id },
      el("td", { text: ticket.number }),
      el("td", { text: ticket.title }),
      el("td", {}, el("span", { className: "badge", text: ticket.status_display })),
      extra,
    );
  }

  let mineTimer = null;
  function scheduleMine() {
    window.clearTimeout(mineTimer);
    mineTimer = window.setTimeout(loadMine, 300);
  }

  async function loadMine() {
    try {
      const open = $("#mine-open").checked ? "true" : "false";
      const { data } = await api("GET", `${config.urls.my_tickets}?open=${open}`);
      $("#mine-rows").replaceChildren(...data.map((t) => ticketRow(t, el("td", { text: formatTime(t.updated_at) }))));
      $("#mine-empty").hidden = data.length > 0;
    } catch (error) {
      $("#mine-empty").hidden = false;
      $("#mine-empty").textContent = `我的工单加载失败：${error.message}`;
    }
  }
  $("#mine-open").addEventListener("change", loadMine);
  $("#mine-refresh").addEventListener("click", loadMine);

  $("#search-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("#search-text").value.trim();
    const note = $("#search-note");
    if (!text) {
      note.textContent = "请输入工单编号、标题或地点。";
      $("#search-text").focus();
      return;
    }
    try {
      const { data } = await api("GET", `${config.urls.tickets}?search=${encodeURIComponent(text)}&page_size=20`);
      const rows = data.results || [];
      $("#search-rows").replaceChildren(
        ...rows.map((t) =>
          ticketRow(
            t,
            el(
              "td",
              {},
              terminalStates.has(t.status)
                ? null
                : el("button", { type: "button", className: "plain", "data-merge": t.id, "data-label": `${t.number} ${t.title}`, "aria-label": `设为并单目标：${t.number}`, text: "设为并单目标" }),
            ),
          ),
        ),
      );
      note.textContent = rows.length ? `找到 ${data.count} 件${data.count > rows.length ? `，显示前 ${rows.length} 件` : ""}。` : "没有找到工单。";
    } catch (error) {
      note.textContent = error.message;
    }
  });
  $("#search-rows").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-merge]");
    if (button) chooseMerge(Number(button.dataset.merge), `${button.dataset.label}（查询结果）`);
  });

  // --- the queue --------------------------------------------------------------------------------------------

  async function loadQueue() {
    try {
      const { data } = await api("GET", config.urls.live_calls);
      $("#queue-length").textContent = String(data.queue_length);
    } catch (error) {
      // Informative only; the next round tries again.
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
    const after = state.lastEventId === null ? "" : `?after=${state.lastEventId}`;
    setConnection(retries ? "reconnecting" : "connecting", "实时连接：正在连接…");
    refusal = "";
    socket = new WebSocket(`${scheme}//${window.location.host}${config.socket_path}${after}`);
    socket.addEventListener("message", onMessage);
    socket.addEventListener("close", onClose);
  }

  const isCurrentCall = (callId) => Boolean(state.call && callId === state.call.call_id);
  const isCurrentTicket = (ticketId) => Boolean(state.ticket && ticketId === state.ticket.id);

  function onMessage(message) {
    lastMessageAt = Date.now();
    let payload;
    try {
      payload = JSON.parse(message.data);
    } catch (error) {
      return;
    }
    switch (payload.type) {
      case "catchup.complete":
        retries = 0;
        state.lastEventId = Math.max(state.lastEventId || 0, payload.last_event_id);
        setConnection("ready", "实时连接：已连接");
        // Call and transcript events are not stored: what was missed is read again.
        loadState();
        scheduleMine();
        break;
      case "error":
        refusal = payload.detail || "";
        break;
      case "call.started":
        loadState();
        loadQueue();
        break;
      case "call.state":
      case "call.ended":
        if (isCurrentCall(payload.call_id)) refreshCall();
        else loadState();
        loadQueue();
        break;
      case "call.alert":
        if (isCurrentCall(payload.call_id)) addAlert(payload);
        break;
      case "transcript.partial":
        if (isCurrentCall(payload.call_id)) $("#partial").textContent = payload.text;
        break;
      case "transcript.final":
        if (isCurrentCall(payload.call_id)) addSegment(payload);
        break;
      case "knowledge.suggestion":
        if (isCurrentCall(payload.call_id) || (payload.call_id === null && isCurrentTicket(payload.ticket_id))) renderAnswers(payload.articles);
        break;
      case "routing.suggestion":
        if (isCurrentCall(payload.call_id) || (payload.call_id === null && isCurrentTicket(payload.ticket_id))) renderRouting(payload);
        break;
      case "agent.state":
        loadState();
        break;
      default:
        if (typeof payload.event_id === "number" && typeof payload.ticket_id === "number") {
          state.lastEventId = Math.max(state.lastEventId || 0, payload.event_id);
          if (isCurrentTicket(payload.ticket_id)) scheduleTicketRefresh();
          else if (payload.type === "ticket.created" && state.call && !state.ticket) refreshCall();
          scheduleMine();
        }
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

  // --- start ------------------------------------------------------------------------------------------------

  fillReferenceOptions();
  resetForCall();
  applyAgentState(config.state);
  if (config.state.call) loadState();
  loadMine();
  loadQueue();
  window.setInterval(loadQueue, 15000);
  connect();
})();
