// warroom: small progressive enhancements. Every page works without this file.
// Text from the server is only ever inserted with textContent, never as HTML.
"use strict";

(function () {
  function span(seconds) {
    var s = Math.abs(Math.floor(seconds));
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
    var m = Math.floor((s % 3600) / 60), sec = s % 60;
    var pad = function (n) { return (n < 10 ? "0" : "") + n; };
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + pad(m) + "m";
    return m + "m " + pad(sec) + "s";
  }

  function tickCountdowns() {
    var now = Date.now();
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var due = Date.parse(el.getAttribute("datetime"));
      if (isNaN(due)) return;
      var left = (due - now) / 1000;
      el.textContent = left >= 0 ? "in " + span(left) : "overdue by " + span(left);
      el.classList.toggle("overdue", left < 0);
    });
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function labelOf(value) {
    value = String(value || "").replace(/_/g, " ");
    return value.charAt(0).toUpperCase() + value.slice(1);
  }

  function updateHeader(state) {
    if (!state) return;
    var status = document.querySelector('[data-field="status"]');
    if (status && state.status) {
      status.textContent = "";
      status.appendChild(el("span", "status status-" + state.status.replace(/[^a-z_]/g, ""), labelOf(state.status)));
    }
    ["commander", "communications", "scribe"].forEach(function (role) {
      var node = document.querySelector('[data-field="' + role + '"]');
      if (node) node.textContent = state[role] || "—";
    });
    if (state.acknowledged) {
      var ack = document.querySelector('[data-field="acknowledged_by"]');
      if (ack) ack.textContent = state.acknowledged_by || "yes";
      var clock = document.querySelector('[data-field="clock"]');
      if (clock) clock.textContent = "acked by " + (state.acknowledged_by || "someone");
      var button = document.getElementById("ack-button");
      if (button && button.form) button.form.remove();
    }
  }

  function addEvent(list, ev) {
    if (document.getElementById("event-" + ev.id)) return;
    var kind = String(ev.kind || "").replace(/[^a-z0-9_-]/gi, "-");
    var li = el("li", "event new kind-" + kind);
    li.id = "event-" + ev.id;
    li.setAttribute("data-event-id", ev.id);
    var time = el("time", null, ev.at_text);
    time.setAttribute("datetime", ev.at);
    li.appendChild(time);
    li.appendChild(document.createTextNode(" "));
    li.appendChild(el("span", "kind", ev.kind));
    li.appendChild(document.createTextNode(" "));
    li.appendChild(el("span", "actor", ev.actor));
    if (ev.public) { li.appendChild(document.createTextNode(" ")); li.appendChild(el("span", "tag", "public")); }
    li.appendChild(el("div", "text", ev.text));
    if (ev.output) li.appendChild(el("pre", "output", ev.output));
    list.insertBefore(li, list.firstChild);
  }

  function appendOutput(item) {
    var pre = document.querySelector('pre[data-output-for="' + CSS.escape(String(item.step || "")) + '"]');
    if (!pre) return;
    pre.hidden = false;
    if (item.reset) pre.textContent = "";
    if (item.chunk) pre.textContent += item.chunk;
    if (item.done) {
      pre.setAttribute("data-outcome", item.outcome || "");
      pre.textContent += "\n[" + (item.outcome || "done") + "]";
    }
    pre.scrollTop = pre.scrollHeight;
  }

  function startLive(article) {
    if (!window.EventSource) return;
    var list = document.getElementById("timeline");
    var indicator = document.querySelector("[data-live-indicator]");
    var number = article.getAttribute("data-incident");
    var after = article.getAttribute("data-last-event") || "0";
    var source = new EventSource("/incidents/" + encodeURIComponent(number) + "/events?after=" + encodeURIComponent(after));
    source.addEventListener("open", function () { if (indicator) indicator.hidden = false; });
    source.addEventListener("error", function () { if (indicator) indicator.hidden = true; });
    source.addEventListener("timeline", function (msg) {
      var ev = JSON.parse(msg.data);
      addEvent(list, ev);
      updateHeader(ev.incident);
      article.setAttribute("data-last-event", ev.id);
    });
    source.addEventListener("output", function (msg) { appendOutput(JSON.parse(msg.data)); });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  function enhanceRunForms() {
    document.querySelectorAll("form.run-form").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        var question = form.getAttribute("data-confirm");
        if (question && !window.confirm(question)) { event.preventDefault(); return; }
        if (!window.fetch) return;
        event.preventDefault();
        var step = form.querySelector("[data-step]");
        var pre = step && document.querySelector('pre[data-output-for="' + CSS.escape(step.getAttribute("data-step")) + '"]');
        if (pre) { pre.hidden = false; pre.textContent = ""; }
        if (step) step.disabled = true;
        fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin", headers: { "Accept": "application/json" } })
          .then(function (response) {
            if (!response.ok) {
              return response.json().catch(function () { return {}; }).then(function (body) {
                if (pre) pre.textContent = "Refused: " + ((body.error && body.error.message) || response.status);
              });
            }
          })
          .catch(function () { if (pre) pre.textContent = "Could not reach the server."; })
          .finally(function () { if (step) step.disabled = false; });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    tickCountdowns();
    if (document.querySelector("[data-countdown]")) window.setInterval(tickCountdowns, 1000);
    var article = document.querySelector("article[data-incident]");
    if (article) startLive(article);
    enhanceRunForms();
  });
})();
