// The public site: small improvements over pages that work without any script.
// - The request form: photos are checked before they are sent (count, size); a second tap does not send twice.
// - The status page: new steps arrive over ws/public/tickets/<number>/ and are added without a reload.
// Plain script, no build step. Every text from the server is put in with textContent, never parsed as HTML.
(() => {
  "use strict";

  const byId = (id) => document.getElementById(id);

  // --- the request form -------------------------------------------------------------------------------------

  function requestForm(form) {
    const input = byId("f-photos");
    const message = byId("photos-check");
    const maxPhotos = Number(form.dataset.maxPhotos || 3);
    const maxBytes = Number(form.dataset.maxBytes || 0);
    if (input && message) {
      input.addEventListener("change", () => {
        const files = Array.from(input.files || []);
        let problem = "";
        if (files.length > maxPhotos) {
          problem = `最多上传 ${maxPhotos} 张照片，请重新选择。`;
        } else {
          const large = files.find((file) => maxBytes && file.size > maxBytes);
          if (large) problem = `照片“${large.name}”超过 ${Math.round(maxBytes / 1048576)} MB，请换一张。`;
        }
        message.textContent = problem;
        message.hidden = !problem;
        if (problem) {
          input.value = "";
          input.setAttribute("aria-invalid", "true");
        } else {
          input.removeAttribute("aria-invalid");
        }
      });
    }
    let sent = false;
    form.addEventListener("submit", (event) => {
      if (sent) {
        event.preventDefault();
        return;
      }
      sent = true;
      const button = form.querySelector("button[type=submit]");
      if (button) button.textContent = "正在提交…";
    });
  }

  // --- the status page --------------------------------------------------------------------------------------

  function statusPage(root) {
    const config = JSON.parse(byId("public-status-config").textContent);
    const seen = new Set(config.seen);
    const refusedCodes = new Set([4400, 4401, 4403, 4404]);
    // A healthy socket hears a heartbeat every 25 s; after this much silence it is made again.
    const SILENCE_MS = 60000;
    let lastEventId = config.last_event_id;
    let newestShown = Math.max(0, ...config.seen);
    let socket = null;
    let retries = 0;
    let refusal = "";
    let lastMessageAt = Date.now();

    const timeFormat = new Intl.DateTimeFormat("zh-CN", {
      timeZone: "Asia/Shanghai",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    });

    function formatTime(iso) {
      const parts = {};
      for (const part of timeFormat.formatToParts(new Date(iso))) parts[part.type] = part.value;
      return `${parts.year}年${parts.month}月${parts.day}日 ${parts.hour}:${parts.minute}`;
    }

    function setLive(state, text) {
      root.dataset.live = state;
      byId("live-status").textContent = text;
    }

    function entry(update) {
      const item = document.createElement("li");
      item.dataset.event = String(update.event_id);
      item.dataset.step = update.step;
      item.className = "is-new";
      const time = document.createElement("time");
      time.dateTime = update.occurred_at;
      time.textContent = formatTime(update.occurred_at);
      const step = document.createElement("p");
      step.className = "step";
      const label = config.steps[update.step] || update.status_display;
      step.textContent = update.department ? `${label}：${update.department}` : label;
      item.append(time, step);
      if (update.reply) {
        const reply = document.createElement("p");
        reply.className = "text";
        reply.textContent = update.reply;
        item.append(reply);
      }
      return item;
    }

    function apply(update) {
      if (seen.has(update.event_id)) return;
      seen.add(update.event_id);
      const timeline = byId("timeline");
      const later = Array.from(timeline.children).find((item) => Number(item.dataset.event) > update.event_id);
      timeline.insertBefore(entry(update), later || null);
      // An older step caught up late says nothing about the state now.
      if (update.event_id < newestShown) return;
      newestShown = update.event_id;
      root.dataset.status = update.status;
      byId("status-display").textContent = update.status_display;
      if (update.department) byId("department").textContent = update.department;
      if (update.step === "replied" && update.reply) {
        byId("reply-text").textContent = update.reply;
        byId("reply-time").textContent = formatTime(update.occurred_at);
        byId("reply-section").hidden = false;
      } else if (update.step === "dispatched") {
        byId("reply-section").hidden = true;
      }
      byId("rating-section").hidden = update.status !== config.rateable;
      const label = config.steps[update.step] || update.status_display;
      byId("announcer").textContent = `办理进度有更新：${label}。当前状态：${update.status_display}`;
    }

    function connect() {
      const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
      const query = `code=${encodeURIComponent(config.code)}&after=${lastEventId}`;
      setLive(retries ? "reconnecting" : "connecting", "实时更新：正在连接…");
      refusal = "";
      socket = new WebSocket(`${scheme}//${window.location.host}${config.socket_path}?${query}`);
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
        lastEventId = Math.max(lastEventId, payload.last_event_id);
        setLive("ready", "实时更新：已连接，办理进度有变化时本页会自动更新");
        if (payload.truncated) window.location.reload();
      } else if (payload.type === "error") {
        refusal = payload.detail || "";
      } else if (payload.type === "public.ticket" && typeof payload.event_id === "number") {
        lastEventId = Math.max(lastEventId, payload.event_id);
        apply(payload);
      }
    }

    function onClose(event) {
      socket = null;
      if (refusedCodes.has(event.code)) {
        setLive("refused", `实时更新已停止${refusal ? `：${refusal}` : ""}。请稍后重新查询。`);
        return;
      }
      retries += 1;
      const delay = Math.min(30000, 1000 * 2 ** Math.min(retries - 1, 5));
      setLive("reconnecting", `实时更新已断开，${Math.round(delay / 1000)} 秒后重新连接…`);
      window.setTimeout(connect, delay);
    }

    window.setInterval(() => {
      if (socket && socket.readyState === WebSocket.OPEN && Date.now() - lastMessageAt > SILENCE_MS) socket.close();
    }, 15000);

    if (!("WebSocket" in window)) {
      setLive("unsupported", "您的浏览器不支持实时更新，请刷新页面查看最新进度。");
      return;
    }
    connect();
  }

  const form = byId("submit-form");
  if (form) requestForm(form);
  const status = byId("public-status");
  if (status) statusPage(status);
  const summary = byId("error-summary");
  if (summary) summary.focus();
})();
