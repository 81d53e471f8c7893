// eucp console: live sections without reloading the page. Polls the page's `data-live` URL and
// swaps in each `data-section` whose HTML changed. No framework, nothing loaded from elsewhere.
(function () {
  "use strict";
  var main = document.querySelector("main[data-live]");
  if (!main) { return; }
  var url = main.getAttribute("data-live");
  var every = parseInt(main.getAttribute("data-poll-ms"), 10) || 2000;
  var status = document.getElementById("live-status");
  var last = {};
  var timer = null;

  function say(text, cls) {
    if (status) { status.textContent = text; status.className = "live-status " + (cls || ""); }
  }

  // Whether a section's HTML differs from what the page shows. The first answer is compared
  // with the page as served, parsed as the browser parsed it: a change recorded between the
  // page's rendering and that answer must show too.
  function changed(el, name, html) {
    if (last[name] !== undefined) { return last[name] !== html; }
    var parsed = document.createElement("template");
    parsed.innerHTML = html;
    return parsed.innerHTML !== el.innerHTML;
  }

  function apply(sections) {
    Object.keys(sections).forEach(function (name) {
      var el = main.querySelector('[data-section="' + name + '"]');
      if (!el) { return; }
      if (changed(el, name, sections[name])) {
        var open = Array.prototype.map.call(el.querySelectorAll("details[open]"),
          function (d) { return d.id; });
        el.innerHTML = sections[name];
        open.forEach(function (id) {
          var d = id && document.getElementById(id);
          if (d) { d.open = true; }
        });
      }
      last[name] = sections[name];
    });
  }

  function poll() {
    timer = null;
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 401) { say("signed out: reload to sign in", "bad"); return null; }
        if (!r.ok) { throw new Error(String(r.status)); }
        return r.json();
      })
      .then(function (body) {
        if (!body) { return; }
        apply(body.sections);
        say("live · " + new Date().toLocaleTimeString(), "ok");
        schedule();
      })
      .catch(function () { say("connection lost, retrying", "bad"); schedule(); });
  }

  function schedule() {
    if (timer === null && !document.hidden) { timer = setTimeout(poll, every); }
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) { schedule(); }
  });
  poll();
})();
