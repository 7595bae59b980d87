// The live inbox: new notifications arrive as server-sent events and are added to the list and the unread
// count. Text is set with textContent only (never parsed as HTML). Without this script, every page works;
// the inbox shows what is new on reload.
"use strict";
(function () {
  const count = document.getElementById("unread-count");
  if (!count || !window.EventSource) return;
  const source = new EventSource("/inbox/events");
  // Marks the page once the stream is open (what a test waits for before it expects news).
  source.addEventListener("open", function () { document.body.dataset.live = "open"; });
  source.addEventListener("notification", function (event) {
    let n;
    try { n = JSON.parse(event.data); } catch (_) { return; }
    const current = parseInt(count.textContent, 10);
    if (!isNaN(current)) count.textContent = String(current + 1);
    count.classList.add("fresh");
    const list = document.getElementById("inbox");
    if (!list) return;
    if (list.querySelector('[data-id="' + CSS.escape(n.id) + '"]')) return;
    const item = document.createElement("li");
    item.className = "notification unread live";
    item.dataset.id = n.id;
    const title = document.createElement("p");
    title.className = "title";
    // Only a path of this app (the server makes it): never another site.
    if (n.link && n.link.startsWith("/") && !n.link.startsWith("//")) {
      const link = document.createElement("a");
      link.href = n.link;
      link.textContent = n.title;
      title.appendChild(link);
    } else {
      title.textContent = n.title;
    }
    const body = document.createElement("p");
    body.className = "body";
    body.textContent = n.body;
    const meta = document.createElement("p");
    meta.className = "meta";
    const time = document.createElement("time");
    time.textContent = n.at;
    meta.appendChild(time);
    if (n.reference) {
      const reference = document.createElement("span");
      reference.className = "reference";
      reference.textContent = n.reference;
      meta.append(" ", reference);
    }
    item.append(title, body, meta);
    list.prepend(item);
    const empty = document.getElementById("inbox-empty");
    if (empty) empty.remove();
  });
})();
