// The dashboard's live parts: the server sends rendered fragments over
// server-sent events ({"element id": "html", ...}); each replaces the
// element of that id. Without JavaScript the pages are complete, only not live.
(function () {
  var live = document.querySelector("[data-live]");
  if (!live || !window.EventSource) return;
  var source = new EventSource(live.getAttribute("data-live"));
  source.onmessage = function (event) {
    var fragments;
    try { fragments = JSON.parse(event.data); } catch (e) { return; }
    Object.keys(fragments).forEach(function (id) {
      var element = document.getElementById(id);
      if (element) element.innerHTML = fragments[id];
    });
    document.body.setAttribute("data-updated", String(Date.now()));
  };
})();
