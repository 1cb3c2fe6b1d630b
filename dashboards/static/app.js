/* migfuzz dashboard: copy buttons, filter selects that apply at once, step highlighting. */
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", fn);
    else fn();
  }
  function copyText(node, button) {
    var s = node.textContent;
    var done = function () { button.textContent = "copied"; setTimeout(function () { button.textContent = "copy"; }, 1500); };
    var fallback = function () {
      var r = document.createRange();
      r.selectNodeContents(node);
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(r);
      button.textContent = "selected: press Ctrl+C";
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(s).then(done, fallback);
    } else {
      fallback();
    }
  }
  ready(function () {
    document.querySelectorAll("button.copy").forEach(function (b) {
      b.addEventListener("click", function () {
        var node = document.getElementById(b.dataset.copy);
        if (node) copyText(node, b);
      });
    });
    document.querySelectorAll("form.filters select, form.filters input[type=checkbox]").forEach(function (s) {
      s.addEventListener("change", function () { s.form.submit(); });
    });
    var h = window.location.hash;
    if (h && h.indexOf("#step-") === 0) {
      var row = document.getElementById(h.slice(1));
      if (row) row.classList.add("flash");
    }
  });
})();
