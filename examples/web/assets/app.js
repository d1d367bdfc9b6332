// Example web layer. A Capacitor app using @capgo/capacitor-updater confirms a good boot so the
// plugin does not roll the update back.
(function () {
  var updater = window.Capacitor && window.Capacitor.Plugins && window.Capacitor.Plugins.CapacitorUpdater;
  if (updater) { updater.notifyAppReady(); }
  document.getElementById("version").textContent += " (verified by otaseal)";
})();
