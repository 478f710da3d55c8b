// Live preview of a message template: a small fetch to the preview endpoint, CSRF token in a header.
(function () {
  "use strict";
  var form = document.getElementById("template-form");
  if (!form) { return; }
  var text = document.getElementById("template-text");
  var sample = document.getElementById("sample");
  var preview = document.getElementById("preview");
  var problems = document.getElementById("problems");
  var token = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var timer = null;
  var sequence = 0;

  function show(result) {
    // The server renders the preview (escaped, WeCom's markdown subset re-enabled): bot/web/templates/_preview.html
    preview.innerHTML = result.html;
    problems.textContent = "";
    result.problems.forEach(function (p) {
      var div = document.createElement("div");
      div.className = "alert danger";
      div.textContent = p.text;
      problems.appendChild(div);
    });
  }

  function refresh() {
    var mine = ++sequence;
    fetch(form.getAttribute("data-preview-url"), {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": token},
      body: JSON.stringify({text: text.value, sample: sample.value})
    }).then(function (response) {
      if (!response.ok) { throw new Error(response.status); }
      return response.json();
    }).then(function (result) {
      if (mine === sequence) { show(result); }
    }).catch(function () {
      problems.textContent = "预览暂时无法刷新，请点击“刷新预览”。";
    });
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 400);
  }

  text.addEventListener("input", later);
  sample.addEventListener("change", refresh);
}());
