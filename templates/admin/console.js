// Live progress on an edition's page: server-sent events from /admin/editions/{id}/progress.
(function () {
  "use strict";
  var box = document.getElementById("progress");
  if (!box || !window.EventSource) { return; }
  var bar = document.getElementById("done-share");
  function field(name) { return box.querySelector('[data-field="' + name + '"]'); }
  function set(name, text) { var el = field(name); if (el) { el.textContent = text; } }
  function number(n) { return n.toLocaleString("en-GB"); }
  function duration(seconds) {
    if (seconds === null) { return "–"; }
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    return (h ? h + " h " : "") + (h || m ? m + " min " : "") + s + " s";
  }
  var source = new EventSource(box.getAttribute("data-source"));
  source.addEventListener("progress", function (event) {
    var p = JSON.parse(event.data);
    set("status", p.status);
    set("reason", p.pause_reason || p.waiting_reason || "");
    ["total", "sent", "retrying", "failed", "skipped"].forEach(function (k) { set(k, number(p[k])); });
    set("per_second", p.per_second.toFixed(1));
    set("eta", duration(p.eta_seconds));
    set("percent", (Math.round(p.done_share * 1000) / 10).toString());
    if (bar) { bar.value = p.done_share; }
    box.setAttribute("data-status", p.status);
    if (p.status === "done" || p.status === "cancelled") {
      set("live", "The edition is " + p.status + ".");
      source.close();
    }
  });
})();
