// The dashboard's only script of its own (the CSP allows no inline scripts or event handlers).
// The env picker asks for /ui/env/<name>: the chosen env goes into the path, not the query.
document.addEventListener("htmx:configRequest", function (event) {
  var elt = event.detail.elt;
  if (elt && elt.id === "env") {
    event.detail.path = "/ui/env/" + encodeURIComponent(elt.value);
  }
});

// Choosing by watching: the videos of a group play, pause and seek together. The control
// ([data-sync-control=NAME]) drives the videos under [data-sync-group=NAME]; a video's own
// controls (or a script) that seek or play one of them move the others too.
function syncGroup(control, videos) {
  var play = control.querySelector("[data-sync-play]");
  var seek = control.querySelector("[data-sync-seek]");
  var time = control.querySelector("[data-sync-time]");
  var busy = false;  // set while this code moves the videos, so that their events do not echo back

  function longest() {
    return videos.reduce(function (m, v) { return isFinite(v.duration) ? Math.max(m, v.duration) : m; }, 0);
  }
  function seekAll(t, except) {
    busy = true;
    videos.forEach(function (v) {
      if (v !== except) { v.currentTime = Math.min(t, isFinite(v.duration) ? v.duration : t); }
    });
    busy = false;
    seek.value = t;
    time.textContent = t.toFixed(1) + " s";
  }
  function playAll() {
    busy = true;
    videos.forEach(function (v) { var p = v.play(); if (p && p.catch) { p.catch(function () {}); } });
    busy = false;
    play.textContent = "Pause all";
  }
  function pauseAll() {
    busy = true;
    videos.forEach(function (v) { v.pause(); });
    busy = false;
    play.textContent = "Play all";
  }
  play.addEventListener("click", function () {
    if (videos.some(function (v) { return !v.paused && !v.ended; })) { pauseAll(); } else { playAll(); }
  });
  seek.addEventListener("input", function () { seekAll(parseFloat(seek.value), null); });
  videos.forEach(function (v) {
    v.addEventListener("loadedmetadata", function () { seek.max = longest(); });
    v.addEventListener("seeked", function () {
      if (!busy && v.paused) { seekAll(v.currentTime, v); }
    });
    v.addEventListener("play", function () { if (!busy) { playAll(); } });
    v.addEventListener("pause", function () { if (!busy && !v.ended) { pauseAll(); } });
    v.addEventListener("timeupdate", function () {
      if (v === videos[0] || videos[0].ended) {
        seek.value = v.currentTime;
        time.textContent = v.currentTime.toFixed(1) + " s";
      }
    });
  });
  seek.max = longest();
  control.hidden = false;
}

document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-sync-control]").forEach(function (control) {
    var name = control.getAttribute("data-sync-control");
    var group = document.querySelector('[data-sync-group="' + name + '"]');
    var videos = group ? Array.prototype.slice.call(group.querySelectorAll("video")) : [];
    if (videos.length) { syncGroup(control, videos); }
  });
});
