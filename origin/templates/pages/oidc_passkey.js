// The hosted sign-in page's passkey button: asks Tessera for the ceremony's options (a
// discoverable sign-in, or the second factor of a challenge), lets the browser's authenticator
// answer, and posts the answer with the page's form. Everything else works without it.
document.querySelectorAll("button[data-passkey-options]").forEach((button) => {
  button.hidden = false;
  button.addEventListener("click", async () => {
    const form = button.form;
    const error = document.getElementById("passkey-error");
    try {
      const response = await fetch(button.dataset.passkeyOptions, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: button.dataset.passkeyBody,
      });
      if (!response.ok) throw new Error("options " + response.status);
      const options = await response.json();
      const publicKey = PublicKeyCredential.parseRequestOptionsFromJSON(options.publicKey);
      const credential = await navigator.credentials.get({ publicKey });
      form.elements.credential.value = JSON.stringify(credential.toJSON());
      if (form.elements.ceremony) form.elements.ceremony.value = options.ceremony || "";
      form.submit();
    } catch (e) {
      error.hidden = false;
    }
  });
});
