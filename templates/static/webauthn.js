// Security keys (WebAuthn): the only script of the sign-in and settings
// pages, loaded from /static so the CSP can forbid inline script.
//
// A form with data-webauthn="get" (sign in) or "create" (register) names,
// in data-options, a <script type="application/json"> block holding the
// options the server made (its challenge is kept server-side). On submit,
// the script runs the ceremony, puts the authenticator's response, as
// JSON, in the form's "response" field and submits the form.
(function () {
  "use strict";
  function decode(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function encode(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function ids(list) {
    (list || []).forEach(function (c) { c.id = decode(c.id); });
  }
  function toJSON(cred) {
    var r = cred.response, out = {
      id: cred.id, rawId: encode(cred.rawId), type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults(),
      response: { clientDataJSON: encode(r.clientDataJSON) }
    };
    if (r.attestationObject) {
      out.response.attestationObject = encode(r.attestationObject);
      out.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = encode(r.authenticatorData);
      out.response.signature = encode(r.signature);
      if (r.userHandle) out.response.userHandle = encode(r.userHandle);
    }
    return out;
  }
  document.querySelectorAll("form[data-webauthn]").forEach(function (form) {
    var status = form.parentElement.querySelector(".js-webauthn-status");
    if (!window.PublicKeyCredential || !navigator.credentials) {
      status.textContent = "This browser cannot use security keys. Use another sign-in method, or another browser.";
      return;
    }
    form.hidden = false;
    form.addEventListener("submit", function (ev) {
      if (form.elements.response.value) return;
      ev.preventDefault();
      var pk = JSON.parse(document.getElementById(form.dataset.options).textContent).publicKey;
      pk.challenge = decode(pk.challenge);
      var ceremony;
      if (form.dataset.webauthn === "get") {
        ids(pk.allowCredentials);
        ceremony = navigator.credentials.get({ publicKey: pk });
      } else {
        pk.user.id = decode(pk.user.id);
        ids(pk.excludeCredentials);
        ceremony = navigator.credentials.create({ publicKey: pk });
      }
      status.textContent = "Follow your browser's prompt to use your security key.";
      ceremony.then(function (cred) {
        form.elements.response.value = JSON.stringify(toJSON(cred));
        form.submit();
      }, function (err) {
        status.textContent = "The security key was not used (" + err.name + "). Try again.";
      });
    });
  });
})();
