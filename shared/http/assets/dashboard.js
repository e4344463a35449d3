// Progressive enhancement for the Devices tab: the X opens a confirmation dialog with the
// UNLINK button instead of going to the confirmation page. Without JavaScript the page works
// the same, one page later. Device names only ever go in through textContent and value.
"use strict";
document.addEventListener("submit", (event) => {
  const form = event.target;
  const dialog = document.getElementById("unlink-dialog");
  if (!(form instanceof HTMLFormElement) || !form.classList.contains("unlink-ask") || !dialog || !dialog.showModal) {
    return;
  }
  event.preventDefault();
  const device = form.elements.namedItem("device").value;
  dialog.querySelector("[data-device-name]").textContent = device;
  dialog.querySelector("[data-token-count]").textContent = form.dataset.tokens;
  dialog.querySelector("input[name=device]").value = device;
  dialog.showModal();
  dialog.querySelector("button[value=cancel]").focus();
});
document.addEventListener("click", (event) => {
  const button = event.target;
  if (button instanceof HTMLButtonElement && button.value === "cancel" && button.closest("dialog")) {
    event.preventDefault();
    button.closest("dialog").close();
  }
});
