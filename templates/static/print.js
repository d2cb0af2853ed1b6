// Shows the Print button on the backup codes page: the only script the
// page needs, loaded from /static so the CSP can forbid inline script.
document.querySelectorAll(".js-print").forEach(function (b) {
  b.hidden = false;
  b.addEventListener("click", function () { window.print(); });
});
