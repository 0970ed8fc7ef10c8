/* Voice notes recorded in the browser (MediaRecorder), for upload fields that take audio
   (widgets/photo.html). Progressive enhancement: the record button is shown only where the
   browser can record and put a file into the form's file input; everywhere else the file input
   (which accepts audio files) is the way in. The recording becomes an ordinary file of that
   input, so the server checks it like any upload, and nothing is sent before the form is. */
(function () {
  "use strict";
  if (window.gridflowRecorder) return;
  window.gridflowRecorder = true;
  var MAX_SECONDS = 300;
  var TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/mp4", "audio/webm"];

  function supported() {
    return !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.MediaRecorder &&
              window.DataTransfer);
  }

  function pickType() {
    for (var i = 0; i < TYPES.length; i++) {
      if (!MediaRecorder.isTypeSupported || MediaRecorder.isTypeSupported(TYPES[i])) return TYPES[i];
    }
    return "";
  }

  function stamp() {
    var d = new Date(), p = function (n) { return (n < 10 ? "0" : "") + n; };
    return d.getFullYear() + p(d.getMonth() + 1) + p(d.getDate()) + "-" + p(d.getHours()) + p(d.getMinutes()) +
      p(d.getSeconds());
  }

  function extension(type) {
    if (type.indexOf("ogg") >= 0) return ".ogg";
    if (type.indexOf("mp4") >= 0) return ".m4a";
    return ".webm";
  }

  function setup(box) {
    var input = document.getElementById(box.getAttribute("data-recorder-for"));
    if (!input) return;
    var rec = box.querySelector("[data-record]"), stop = box.querySelector("[data-stop]");
    var status = box.querySelector("[data-status]"), playback = box.querySelector("[data-playback]");
    var recorder = null, chunks = [], timer = null;
    box.hidden = false;

    function finish() {
      var type = (recorder && recorder.mimeType) || pickType() || "audio/webm";
      var blob = new Blob(chunks, {type: type.split(";")[0]});
      var file = new File([blob], "voice-" + stamp() + extension(type), {type: blob.type});
      var dt = new DataTransfer();
      Array.prototype.forEach.call(input.files || [], function (f) { dt.items.add(f); });
      dt.items.add(file);
      input.files = dt.files;
      input.dispatchEvent(new Event("change", {bubbles: true}));
      playback.src = URL.createObjectURL(blob);
      playback.hidden = false;
      status.textContent = status.getAttribute("data-done");
      box.setAttribute("data-recorded", String(dt.files.length));
    }

    rec.addEventListener("click", function () {
      navigator.mediaDevices.getUserMedia({audio: true}).then(function (stream) {
        var type = pickType();
        recorder = type ? new MediaRecorder(stream, {mimeType: type}) : new MediaRecorder(stream);
        chunks = [];
        recorder.addEventListener("dataavailable", function (e) { if (e.data && e.data.size) chunks.push(e.data); });
        recorder.addEventListener("stop", function () {
          stream.getTracks().forEach(function (t) { t.stop(); });
          clearTimeout(timer);
          rec.hidden = false;
          stop.hidden = true;
          finish();
        });
        recorder.start(1000);
        timer = setTimeout(function () { if (recorder.state === "recording") recorder.stop(); }, MAX_SECONDS * 1000);
        rec.hidden = true;
        stop.hidden = false;
        stop.focus();
        status.textContent = status.getAttribute("data-recording");
        box.setAttribute("data-state", "recording");
      }).catch(function () {
        status.textContent = status.getAttribute("data-denied");
      });
    });
    stop.addEventListener("click", function () {
      if (recorder && recorder.state === "recording") recorder.stop();
      box.setAttribute("data-state", "stopped");
    });
  }

  function init() {
    if (!supported()) return;
    document.querySelectorAll(".recorder[data-recorder-for]").forEach(setup);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
