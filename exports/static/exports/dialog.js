// The export dialog's Up and Down buttons move a column's row and number every row again 10, 20, 30…
// in the order shown, so the positions (what the form sends) follow the rows. Without JavaScript the
// buttons stay hidden and the positions are typed.
document.addEventListener("DOMContentLoaded", function () {
  var table = document.getElementById("dialog-column-table");
  if (!table) return;
  var body = table.tBodies[0], said = document.getElementById("column-moved");
  table.querySelectorAll(".move-up, .move-down").forEach(function (button) { button.hidden = false; });

  function renumber() {
    Array.prototype.forEach.call(body.rows, function (row, index) {
      row.querySelector("input.position").value = (index + 1) * 10;
    });
  }

  table.addEventListener("click", function (event) {
    var button = event.target.closest(".move-up, .move-down");
    if (!button) return;
    var row = button.closest("tr"), up = button.classList.contains("move-up");
    var other = up ? row.previousElementSibling : row.nextElementSibling;
    if (!other) return;
    body.insertBefore(up ? row : other, up ? other : row);
    renumber();
    button.focus();  // the moved row keeps the keyboard's place
    var label = row.querySelector("label").textContent.trim();
    said.textContent = said.dataset.text.replace("{column}", label)
      .replace("{position}", Array.prototype.indexOf.call(body.rows, row) + 1);
  });
});
