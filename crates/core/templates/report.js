(function () {
  "use strict";
  var grid = document.getElementById("grid");
  var controls = document.getElementById("controls");
  if (!grid || !controls) { return; }
  var body = grid.tBodies[0];
  var filter = document.getElementById("filter");
  var status = document.getElementById("status-filter");
  var shown = document.getElementById("shown");
  var RANK = { "s-fail": "0", "s-unknown": "1", "s-warn": "2", "s-ok": "3", "s-none": "4" };
  controls.hidden = false;

  function apply() {
    var q = filter.value.trim().toLowerCase();
    var s = status.value;
    var n = 0;
    for (var i = 0; i < body.rows.length; i++) {
      var row = body.rows[i];
      var show = (!q || row.cells[0].textContent.toLowerCase().indexOf(q) >= 0) &&
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
    // The keys are read once per click, not on load: the state's rank, then the text.
    var keyed = [];
    for (var r = 0; r < body.rows.length; r++) {
      var cell = body.rows[r].cells[col];
      var rank = RANK[cell.className];
      keyed.push([(rank === undefined ? "" : rank) + cell.textContent, body.rows[r]]);
    }
    keyed.sort(function (a, b) {
      return (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0) * dir;
    });
    var frag = document.createDocumentFragment();
    keyed.forEach(function (k) { frag.appendChild(k[1]); });
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
  // A cell cut short shows its whole text on hover (set when first pointed at).
  body.addEventListener("mouseover", function (e) {
    var td = e.target.closest ? e.target.closest("td") : null;
    if (td && !td.title && td.scrollWidth > td.clientWidth) { td.title = td.textContent; }
  });
  filter.addEventListener("input", apply);
  status.addEventListener("change", apply);
  // Every row is shown at first: counted, not touched (10,000 rows load faster).
  shown.textContent = body.rows.length + " of " + body.rows.length + " domains shown";
})();
