// The agents' callback list: every action goes through the REST API (the same services as any client);
// the page is reloaded afterwards so it shows what the server holds.
(function () {
  "use strict";
  var root = document.querySelector(".callbacks");
  if (!root) return;
  var api = root.getAttribute("data-api");
  var csrf = root.querySelector("[name=csrfmiddlewaretoken]").value;
  var message = document.getElementById("callback-message");

  function say(text) {
    message.textContent = text;
  }

  function post(path, body) {
    return fetch(api + path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
      body: JSON.stringify(body || {}),
    }).then(function (response) {
      return response
        .json()
        .catch(function () {
          return {};
        })
        .then(function (data) {
          if (!response.ok) throw new Error(data.detail || "操作失败（" + response.status + "）");
          return data;
        });
    });
  }

  function done(text) {
    say(text);
    window.setTimeout(function () {
      window.location.reload();
    }, 600);
  }

  function fail(error) {
    say(error.message);
  }

  var actions = {
    claim: function (row) {
      return post("callbacks/" + row.dataset.task + "/claim/").then(function () {
        done("已领取，请在“我的回访”中拨打。");
      });
    },
    release: function (row) {
      return post("callbacks/" + row.dataset.task + "/release/").then(function () {
        done("已退回待领取。");
      });
    },
    unreachable: function (row) {
      if (!window.confirm("确认本次无法联系到来电人？")) return Promise.resolve();
      return post("callbacks/" + row.dataset.task + "/unreachable/").then(function (task) {
        done(task.status === "unreachable" ? "多次无法联系，工单已按联系不上办结。" : "已记录，稍后再次回访。");
      });
    },
    reveal: function (row) {
      // Each look is on the ticket's trail.
      return post("tickets/" + row.dataset.ticket + "/contact/").then(function (contact) {
        var box = row.querySelector("[data-contact]");
        box.textContent = "";
        var link = document.createElement("a");
        link.href = "tel:" + contact.caller_phone;
        link.textContent = (contact.caller_name ? contact.caller_name + " " : "") + (contact.caller_phone || "无联系电话");
        box.appendChild(link);
      });
    },
  };

  root.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-action]");
    if (!button) return;
    var action = actions[button.dataset.action];
    if (!action) return;
    button.disabled = true;
    action(button.closest("tr"))
      .catch(fail)
      .then(function () {
        button.disabled = false;
      });
  });

  root.addEventListener("change", function (event) {
    if (event.target.name !== "satisfaction") return;
    var comment = event.target.form.elements.comment;
    comment.required = event.target.value === "dissatisfied";
  });

  root.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-action=record]");
    if (!form) return;
    event.preventDefault();
    var row = form.closest("tr");
    var body = { satisfaction: form.elements.satisfaction.value, comment: form.elements.comment.value };
    post("callbacks/" + row.dataset.task + "/record/", body)
      .then(function () {
        done(body.satisfaction === "dissatisfied" ? "已记录不满意，工单退回原主办单位重办。" : "已记录，工单办结。");
      })
      .catch(fail);
  });
})();
