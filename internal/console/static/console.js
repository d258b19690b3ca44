// selfserve console: small enhancements over plain forms (htmx does the
// in-place edits). Everything works without this file.
document.addEventListener("change", function (e) {
  if (e.target.id === "select-all") {
    document.querySelectorAll("input.pick").forEach(function (b) { b.checked = e.target.checked; });
  }
});
document.addEventListener("htmx:afterSwap", function (e) {
  var input = e.detail.elt.querySelector && e.detail.elt.querySelector("input[name=value]");
  if (input) { input.focus(); }
});
document.addEventListener("keydown", function (e) {
  if (e.key === "Escape") {
    var cancel = document.activeElement && document.activeElement.closest && document.activeElement.closest("td.editing");
    if (cancel) { var b = cancel.querySelector("button[type=button]"); if (b) { b.click(); } }
  }
});
