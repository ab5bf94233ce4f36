// Live progress from server-sent events: an edition's (/admin/editions/{id}/progress) and a
// CSV import's (/admin/subscribers/import/{job}/progress).
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

(function () {
  "use strict";
  var box = document.getElementById("import-progress");
  if (!box || !window.EventSource) { return; }
  var bar = document.getElementById("import-share");
  function set(name, text) { var el = box.querySelector('[data-field="' + name + '"]'); if (el) { el.textContent = text; } }
  var source = new EventSource(box.getAttribute("data-source"));
  source.addEventListener("progress", function (event) {
    var p = JSON.parse(event.data);
    var writing = p.phase === "writing" || p.phase === "done";
    set("phase", writing ? "Writing" : "Checking every row first");
    set("rows", p.done.toLocaleString("en-GB") + (writing && p.total !== null ? " of " + p.total.toLocaleString("en-GB") : ""));
    if (p.share === null) { bar.removeAttribute("value"); } else { bar.value = p.share; }
    if (p.phase === "done" || p.phase === "failed") {
      source.close();
      set("live", "The import has ended: showing the result.");
      window.location.reload();
    }
  });
})();
