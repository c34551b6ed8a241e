// Signoff console: live updates over /api/v1/events and keyboard triage.
// Everything works without this script; it only saves reloads and mouse trips.
(function () {
  "use strict";

  var queueBody = document.getElementById("queue-body");
  var requestPage = document.getElementById("decide");

  function rows() {
    return Array.prototype.slice.call(document.querySelectorAll("table.requests tr.request"));
  }

  function selectedIndex() {
    return rows().findIndex(function (row) { return row.classList.contains("selected"); });
  }

  function select(index) {
    var all = rows();
    if (all.length === 0) { return; }
    index = Math.max(0, Math.min(all.length - 1, index));
    all.forEach(function (row, i) { row.classList.toggle("selected", i === index); });
    all[index].scrollIntoView({ block: "nearest" });
  }

  function typing(event) {
    var tag = (event.target && event.target.tagName) || "";
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || event.target.isContentEditable;
  }

  function toggleKeys() {
    var dialog = document.getElementById("keys");
    if (!dialog) { return; }
    if (dialog.open) { dialog.close(); } else { dialog.showModal(); }
  }

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && typing(event)) { event.target.blur(); return; }
    if (typing(event) || event.metaKey || event.ctrlKey || event.altKey) { return; }
    var key = event.key;
    if (key === "?") { toggleKeys(); event.preventDefault(); return; }
    if (requestPage) {
      if (key === "a" || key === "d") {
        var box = document.getElementById(key === "a" ? "approve-comment" : "deny-comment");
        if (box && !box.disabled) { box.focus(); event.preventDefault(); }
      } else if (key === "u") {
        window.location.href = "/";
      }
      return;
    }
    if (key === "j" || key === "ArrowDown") { select(selectedIndex() + 1); event.preventDefault(); }
    else if (key === "k" || key === "ArrowUp") { select(selectedIndex() - 1); event.preventDefault(); }
    else if (key === "Enter") {
      var row = rows()[selectedIndex()];
      var link = row && row.querySelector("a.open");
      if (link) { window.location.href = link.getAttribute("href"); event.preventDefault(); }
    } else if (key === "/") {
      var filter = document.querySelector("#filters input");
      if (filter) { filter.focus(); event.preventDefault(); }
    }
  });

  // Live updates: refresh the queue table (same filters) when requests come and go.
  if (!window.EventSource || (!queueBody && !requestPage)) { return; }
  var pending = null;
  function refreshQueue() {
    if (pending) { return; }
    pending = setTimeout(function () {
      pending = null;
      var selected = rows()[selectedIndex()];
      var selectedId = selected && selected.getAttribute("data-id");
      fetch("/fragments/queue" + window.location.search, { credentials: "same-origin" })
        .then(function (response) {
          if (response.status === 401) { window.location.reload(); return null; }
          var count = response.headers.get("x-pending-count");
          return response.text().then(function (html) { return { html: html, count: count }; });
        })
        .then(function (update) {
          if (!update) { return; }
          var holder = document.createElement("div");
          holder.innerHTML = update.html; // Server-rendered and escaped.
          var fresh = holder.firstElementChild;
          var current = document.getElementById("queue-body");
          if (fresh && current) { current.replaceWith(fresh); }
          var index = rows().findIndex(function (row) { return row.getAttribute("data-id") === selectedId; });
          select(index >= 0 ? index : 0);
          if (update.count !== null) {
            document.title = document.title.replace(/^\(\d+\)/, "(" + update.count + ")");
            var badge = document.getElementById("pending-count");
            if (badge) { badge.textContent = update.count; }
          }
        })
        .catch(function () { /* The next event tries again. */ });
    }, 150);
  }

  var here = requestPage ? window.location.pathname.split("/").pop() : null;
  var events = null;

  function listen() {
    events = new EventSource("/api/v1/events");
    // The kinds come from the server (every live event kind, and "resync"), so a new kind
    // refreshes the console without a list here to keep in step.
    var kinds = document.querySelector('meta[name="live-events"]');
    (kinds ? kinds.content.split(" ") : ["resync"]).forEach(function (kind) {
      events.addEventListener(kind, function (message) {
        if (queueBody) { refreshQueue(); return; }
        var data = {};
        try { data = JSON.parse(message.data); } catch (e) { /* resync */ }
        if (kind === "resync" || data.request_id === here) { showChanged(); }
      });
    });
  }

  // A page kept in the back/forward cache must not keep its stream open: browsers allow
  // a handful of connections per server, and idle streams would starve new pages.
  window.addEventListener("pagehide", function () {
    if (events) { events.close(); events = null; }
  });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted && !events) {
      listen();
      if (queueBody) { refreshQueue(); }
    }
  });
  listen();

  function showChanged() {
    if (document.getElementById("changed")) { return; }
    var note = document.createElement("p");
    note.id = "changed";
    note.className = "notice good";
    note.setAttribute("role", "status");
    var link = document.createElement("a");
    link.href = window.location.pathname + window.location.search;
    link.textContent = "This request changed: reload to see it.";
    note.appendChild(link);
    requestPage.insertBefore(note, requestPage.firstChild.nextSibling);
  }
})();
