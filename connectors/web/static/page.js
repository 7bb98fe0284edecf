// One-tap page: send the chosen score with a POST (a GET never votes),
// let the citizen change it, and send a comment, all without reloading.
"use strict";

(function () {
  var voteForm = document.getElementById("vote-form");
  var commentForm = document.getElementById("comment-form");
  var statements = document.getElementById("statements");
  var statementsForm = document.getElementById("statements-form");
  var status = document.getElementById("status");
  if (!voteForm) {
    return;
  }

  function post(url, fields) {
    var body = new URLSearchParams(fields);
    return fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (response) {
      return response.json().then(function (data) {
        return { ok: response.ok, data: data };
      });
    });
  }

  function mark(score) {
    var buttons = voteForm.querySelectorAll("button.score");
    for (var i = 0; i < buttons.length; i += 1) {
      buttons[i].setAttribute("aria-pressed", buttons[i].value === String(score) ? "true" : "false");
    }
  }

  function say(message) {
    status.textContent = message || "";
  }

  // "auto": the page's own vote for the score of the link it was opened by.
  // It never counts alone, since a scanner that runs scripts makes it too.
  // "tap": a score button pressed by a person (a trusted click or key press).
  function vote(score, mode) {
    mark(score);
    return post(voteForm.getAttribute("action"), { score: String(score), mode: mode })
      .then(function (result) {
        if (result.ok) {
          say(result.data.message);
          if (statements && result.data.saved) {
            statements.hidden = false;
          }
        }
        voteForm.setAttribute("data-voted", String(score));
        voteForm.setAttribute("data-mode", mode);
      })
      .catch(function () { /* the form still works without the script */ });
  }

  // Whether the click that submits the form came from the person, not a script.
  var trustedClick = false;
  voteForm.addEventListener("click", function (event) {
    trustedClick = event.isTrusted;
  }, true);

  voteForm.addEventListener("submit", function (event) {
    var button = event.submitter;
    if (!button || !button.value) {
      return;
    }
    event.preventDefault();
    var mode = trustedClick ? "tap" : "auto";
    trustedClick = false;
    vote(button.value, mode);
  });

  if (commentForm) {
    commentForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var field = document.getElementById("comment");
      if (!field.value.trim()) {
        field.focus();
        return;
      }
      post(commentForm.getAttribute("action"), { comment: field.value })
        .then(function (result) {
          if (result.ok) {
            field.value = "";
            say(result.data.message);
            commentForm.setAttribute("data-sent", "true");
          }
        })
        .catch(function () { /* leave the text for another try */ });
    });
  }

  if (statementsForm) {
    statementsForm.addEventListener("submit", function (event) {
      event.preventDefault();
      var fields = {};
      var checked = statementsForm.querySelectorAll("input[type=radio]:checked");
      for (var i = 0; i < checked.length; i += 1) {
        fields[checked[i].name] = checked[i].value;
      }
      if (!checked.length) {
        return;
      }
      post(statementsForm.getAttribute("action"), fields)
        .then(function (result) {
          say(result.data.message);
          if (result.ok) {
            statementsForm.setAttribute("data-sent", "true");
          }
        })
        .catch(function () { /* the choices stay for another try */ });
    });
  }

  var auto = voteForm.getAttribute("data-auto-score");
  if (auto) {
    vote(auto, "auto");
  }
}());
