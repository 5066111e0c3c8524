// The dashboard's only script of its own (the CSP allows no inline scripts or event handlers).
// The env picker asks for /ui/env/<name>: the chosen env goes into the path, not the query.
document.addEventListener("htmx:configRequest", function (event) {
  var elt = event.detail.elt;
  if (elt && elt.id === "env") {
    event.detail.path = "/ui/env/" + encodeURIComponent(elt.value);
  }
});
