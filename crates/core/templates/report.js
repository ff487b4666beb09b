(function () {
  "use strict";
  var grid = document.getElementById("grid");
  var controls = document.getElementById("controls");
  if (!grid || !controls) { return; }
  var body = grid.tBodies[0];
  var filter = document.getElementById("filter");
  var status = document.getElementById("status-filter");
  var shown = document.getElementById("shown");
  controls.hidden = false;

  function apply() {
    var q = filter.value.trim().toLowerCase();
    var s = status.value;
    var n = 0;
    for (var i = 0; i < body.rows.length; i++) {
      var row = body.rows[i];
      var show = (!q || row.getAttribute("data-domain").indexOf(q) >= 0) &&
        (!s || row.getAttribute("data-status") === s);
      row.hidden = !show;
      if (show) { n++; }
    }
    shown.textContent = n + " of " + body.rows.length + " domains shown";
  }

  function sortBy(th) {
    var col = th.cellIndex;
    var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
    var heads = grid.tHead.rows[0].cells;
    for (var i = 0; i < heads.length; i++) { heads[i].removeAttribute("aria-sort"); }
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].getAttribute("data-sort") || "";
      var y = b.cells[col].getAttribute("data-sort") || "";
      return (x < y ? -1 : x > y ? 1 : 0) * dir;
    });
    var frag = document.createDocumentFragment();
    rows.forEach(function (r) { frag.appendChild(r); });
    body.appendChild(frag);
  }

  var heads = grid.tHead.rows[0].cells;
  for (var i = 0; i < heads.length; i++) {
    (function (th) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = th.textContent;
      button.title = "sort by " + th.textContent;
      th.textContent = "";
      th.appendChild(button);
      button.addEventListener("click", function () { sortBy(th); });
    })(heads[i]);
  }
  filter.addEventListener("input", apply);
  status.addEventListener("change", apply);
  // Every row is shown at first: counted, not touched (10,000 rows load faster).
  shown.textContent = body.rows.length + " of " + body.rows.length + " domains shown";
})();
