// naemon-bridge status page: fetch the panels every few seconds and swap them in; the page works without this.
(function () {
  "use strict";
  var root = document.getElementById("panels-root");
  if (!root || !window.fetch || !window.DOMParser) { return; }
  document.documentElement.classList.add("live");  // the page refreshes itself: the filter needs no button
  var refresh = Number(root.dataset.refresh || "5") * 1000;
  var form = document.getElementById("filter");
  var sortField = document.getElementById("sort");
  var connection = document.getElementById("connection");
  var timer = null;
  var typing = null;
  var generation = 0;

  function query(part) {
    var params = new URLSearchParams(new FormData(form));
    if (!params.get("q")) { params.delete("q"); }
    if (params.get("sort") === "stale") { params.delete("sort"); }
    if (part) { params.set("part", "panels"); }
    var text = params.toString();
    return "/status" + (text ? "?" + text : "");
  }

  function swap(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html");
    ["summary", "objects"].forEach(function (id) {
      var next = fresh.getElementById(id);
      var now = document.getElementById(id);
      if (next && now) { now.replaceWith(document.importNode(next, true)); }
    });
    var status = document.getElementById("status");
    if (status) { document.title = "naemon-bridge · " + status.textContent; }
  }

  function schedule(delay) {
    window.clearTimeout(timer);
    timer = window.setTimeout(load, delay);
  }

  function load() {
    var mine = ++generation;
    window.fetch(query(true), {credentials: "same-origin", headers: {Accept: "text/html"}, cache: "no-store"})
      .then(function (response) {
        if (response.status === 401) { window.location.assign("/status/login"); return null; }
        if (!response.ok) { throw new Error("the bridge answered " + response.status); }
        return response.text();
      })
      .then(function (html) {
        if (html === null || mine !== generation) { return; }
        swap(html);
        connection.textContent = "updated " + new Date().toLocaleTimeString() + ", every " + refresh / 1000 + " s";
        connection.classList.remove("lost");
      })
      .catch(function (error) {
        connection.textContent = "cannot reach the bridge (" + error.message + "): what you see is old";
        connection.classList.add("lost");
      })
      .then(function () { if (mine === generation) { schedule(refresh); } });
  }

  function followFilter() {
    window.history.replaceState(null, "", query(false));
    load();
  }

  form.addEventListener("submit", function (event) { event.preventDefault(); followFilter(); });
  form.addEventListener("input", function () {
    window.clearTimeout(typing);
    typing = window.setTimeout(followFilter, 250);
  });
  root.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-sort]");
    if (!link) { return; }
    event.preventDefault();
    sortField.value = link.dataset.sort;
    followFilter();
  });
  schedule(refresh);
}());
