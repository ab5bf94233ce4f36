// Progressive enhancement: fill the signup form's hidden timezone field from the browser.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var field = document.getElementById("timezone");
    if (!field || field.value) { return; }
    try {
      field.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
    } catch (ignored) {
      field.value = "";
    }
  });
})();
