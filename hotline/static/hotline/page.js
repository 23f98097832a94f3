// What every staff page script needs: building DOM from data (text only, never HTML), reading the page's
// json_script blocks, and calling the REST API with the session and CSRF token, with errors turned into the
// Chinese sentence to show. Loaded by ticketing/base.html before the page's own script.
(function () {
  "use strict";

  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else if (name === "className") node.className = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const readJson = (id) => JSON.parse(document.getElementById(id).textContent);

  class ApiError extends Error {
    constructor(message, status, data) {
      super(message);
      this.status = status;
      this.data = data;
    }
  }

  // `fieldNames` maps API field names to the labels the page shows them under.
  function errorMessage(status, data, fieldNames) {
    if (status === 401) return "登录已失效，请刷新页面后重新登录。";
    const detail = data && typeof data.detail === "string" ? data.detail : "";
    if (status === 403 && /CSRF/i.test(detail)) return "页面已过期，请刷新页面后重试。";
    if (status === 413) return "文件太大，无法上传。";
    if (status >= 500) return "服务器暂时无法处理，请稍后重试。";
    const parts = detail ? [detail] : [];
    if (data && data.errors && typeof data.errors === "object") {
      for (const [field, messages] of Object.entries(data.errors)) {
        const name = fieldNames[field] ?? field;
        const text = [].concat(messages).join(" ");
        parts.push(name ? `${name}：${text}` : text);
      }
    }
    return parts.length ? parts.join(" ") : `操作未成功（错误 ${status}），请稍后重试。`;
  }

  // An `api(method, url, body)` for the page: JSON or FormData bodies; resolves to {status, data}, rejects with
  // an ApiError carrying the sentence to show. `onDate` hears each response's Date header (the server's clock).
  function apiClient({ csrfToken, fieldNames = {}, onDate = null }) {
    return async function api(method, url, body) {
      const options = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
      if (method !== "GET") options.headers["X-CSRFToken"] = csrfToken;
      if (body instanceof FormData) {
        options.body = body;
      } else if (body !== undefined) {
        options.headers["Content-Type"] = "application/json";
        options.body = JSON.stringify(body);
      }
      let response;
      try {
        response = await fetch(url, options);
      } catch (error) {
        throw new ApiError("网络连接失败，请检查网络后重试。", 0, null);
      }
      if (onDate) {
        const date = Date.parse(response.headers.get("Date") || "");
        if (!Number.isNaN(date)) onDate(date);
      }
      const type = response.headers.get("Content-Type") || "";
      const data = type.includes("application/json") ? await response.json().catch(() => null) : null;
      if (!response.ok) throw new ApiError(errorMessage(response.status, data, fieldNames), response.status, data);
      return { status: response.status, data };
    };
  }

  window.HotlinePage = Object.freeze({ el, readJson, ApiError, errorMessage, apiClient });
})();
