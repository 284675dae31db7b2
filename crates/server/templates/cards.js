// WebAuthn ceremonies for IC cards (K11.2): registration, card + PIN login,
// the card step after a password, unlock and re-authentication. Forms with
// a data-card attribute run here; the server checks everything again.
(function () {
  "use strict";

  function toBuf(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function toB64(buf) {
    var bytes = new Uint8Array(buf);
    var s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  async function post(url, body) {
    var res = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    var text = await res.text();
    var data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!res.ok) {
      var msg = data && data.errors && data.errors.length ? data.errors[0].message
        : (data && data.detail) || res.statusText;
      var err = new Error(msg);
      err.code = data && data.code;
      throw err;
    }
    return data;
  }

  function creation(options) {
    var pk = options.publicKey;
    pk.challenge = toBuf(pk.challenge);
    pk.user.id = toBuf(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = toBuf(c.id); });
    return { publicKey: pk };
  }

  function request(options) {
    var pk = options.publicKey;
    pk.challenge = toBuf(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = toBuf(c.id); });
    return { publicKey: pk };
  }

  function registered(c) {
    return {
      id: c.id, rawId: toB64(c.rawId), type: c.type, extensions: {},
      response: {
        attestationObject: toB64(c.response.attestationObject),
        clientDataJSON: toB64(c.response.clientDataJSON),
      },
    };
  }

  function asserted(c) {
    var r = c.response;
    return {
      id: c.id, rawId: toB64(c.rawId), type: c.type, extensions: {},
      response: {
        authenticatorData: toB64(r.authenticatorData),
        clientDataJSON: toB64(r.clientDataJSON),
        signature: toB64(r.signature),
        userHandle: r.userHandle ? toB64(r.userHandle) : null,
      },
    };
  }

  async function run(form) {
    var status = form.querySelector(".card-status");
    var error = form.querySelector(".card-error");
    if (error) error.hidden = true;
    try {
      if (!window.PublicKeyCredential) throw new Error(form.dataset.nowebauthn);
      if (status) status.hidden = false;
      if (form.dataset.card === "register") {
        var body = { label: form.elements.label.value };
        if (form.elements.holder) body.login = form.elements.holder.value;
        var start = await post(form.dataset.start, body);
        var cred = await navigator.credentials.create(creation(start.options));
        await post(form.dataset.finish, { ceremony: start.ceremony, credential: registered(cred) });
        location.assign(form.dataset.next);
      } else {
        var ask = { purpose: form.dataset.purpose };
        if (form.elements.login) ask.login = form.elements.login.value;
        var begun = await post("/api/v1/session/card", ask);
        var got = await navigator.credentials.get(request(begun.options));
        var done = await post("/api/v1/session/card/finish", { ceremony: begun.ceremony, credential: asserted(got) });
        location.assign(done.must_change_password ? "/password" : (form.dataset.next || "/"));
      }
    } catch (e) {
      if (status) status.hidden = true;
      if (e.code === "error.reauth_required") {
        location.assign("/reauth?next=" + encodeURIComponent(location.pathname));
        return;
      }
      if (error) {
        error.textContent = e.name === "NotAllowedError" ? form.dataset.cancelled : e.message;
        error.hidden = false;
      }
    }
  }

  document.querySelectorAll("form[data-card]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      run(form);
    });
  });
})();
