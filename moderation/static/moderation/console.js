// Light enhancements for the staff console; every form also works without script.
(function () {
  "use strict";

  // Show only the decision fields that apply to the chosen decision.
  function syncDecisionFields(form) {
    var decision = form.querySelector("#decision");
    if (!decision) return;
    form.querySelectorAll("[data-for]").forEach(function (field) {
      var shown = field.getAttribute("data-for").split(" ").indexOf(decision.value) !== -1;
      field.hidden = !shown;
    });
    var code = form.querySelector("#reason-code");
    var preview = form.querySelector("#reason-preview");
    if (code && preview) {
      preview.textContent = code.options[code.selectedIndex].title;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var decide = document.getElementById("decide-form");
    if (decide) {
      decide.addEventListener("change", function () { syncDecisionFields(decide); });
      syncDecisionFields(decide);
      decide.addEventListener("submit", function (event) {
        var needsConfirm = (decide.dataset.confirm || "").split(",");
        var value = decide.querySelector("#decision").value;
        if (needsConfirm.indexOf(value) !== -1 && !window.confirm("Record decision: " + value + "?")) {
          event.preventDefault();
        }
      });
    }

    // Forms marked data-fragment post in place and insert the returned HTML fragment.
    document.querySelectorAll("form[data-fragment]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var target = document.querySelector(form.dataset.fragment);
        fetch(form.action, {
          method: "POST",
          body: new FormData(form),
          headers: { "X-Requested-With": "fetch" },
          credentials: "same-origin"
        }).then(function (response) {
          return response.text().then(function (html) {
            if (response.ok) {
              target.insertAdjacentHTML("beforeend", html);
              form.reset();
            } else {
              form.insertAdjacentHTML("beforeend", html);
            }
          });
        });
      });
    });
  });
})();
