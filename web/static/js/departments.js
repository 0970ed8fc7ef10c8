// The department picker (widgets/departments.html): a department's part and limit show once it is
// ticked, and the part is then required; unticked ones post nothing. Without this script every
// input is shown and the server decides.
(function () {
  function sync(row) {
    var pick = row.querySelector("[data-dept-pick]");
    var detail = row.querySelector("[data-dept-detail]");
    if (!pick || !detail) return;
    detail.hidden = !pick.checked;
    detail.querySelectorAll("textarea, input").forEach(function (el) {
      el.disabled = !pick.checked;
      if (el.tagName === "TEXTAREA") el.required = pick.checked;
    });
  }
  document.querySelectorAll(".dept-picker .dept-row").forEach(function (row) {
    sync(row);
    var pick = row.querySelector("[data-dept-pick]");
    if (pick) pick.addEventListener("change", function () {
      sync(row);
      if (pick.checked) { var t = row.querySelector("textarea"); if (t) t.focus(); }
    });
  });
})();
