"""An independent OpenID Connect relying party (Authlib) against a Tessera issuer.

Usage: authlib_rp.py ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI EMAIL PASSWORD

It discovers the issuer, builds an authorization URL with PKCE (S256), state and nonce, signs
in at the hosted page as a browser without JavaScript would (keeping the page's cookies by
hand: requests will not send Secure cookies over plain http), exchanges the code with
client_secret_basic, validates the ID token with Authlib's own rules (signature against the
JWKS, iss, aud, exp, nonce, at_hash), reads userinfo and refreshes. It prints one JSON object
of what it saw; any failure is an exception and a non-zero exit.
"""

import html
import json
import re
import sys
from urllib.parse import urljoin

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken


def form_of(page):
    action = html.unescape(re.search(r'action="([^"]*)"', page).group(1))
    hidden = dict(
        (html.unescape(n), html.unescape(v))
        for n, v in re.findall(r'<input type="hidden" name="([^"]*)" value="([^"]*)"', page)
    )
    return action, hidden


def main():
    issuer, client_id, secret, redirect_uri, email, password = sys.argv[1:7]
    meta = requests.get(issuer + "/.well-known/openid-configuration", timeout=10).json()
    assert meta["issuer"] == issuer, meta
    assert "S256" in meta["code_challenge_methods_supported"], meta

    client = OAuth2Session(
        client_id,
        secret,
        scope="openid email offline_access",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
    )
    verifier = generate_token(48)
    nonce = generate_token(20)
    url, state = client.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )

    cookies = {}

    def browse(method, target, **kwargs):
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
        response = requests.request(
            method, target, headers=headers, allow_redirects=False, timeout=10, **kwargs
        )
        for set_cookie in response.raw.headers.getlist("Set-Cookie"):
            name, value = set_cookie.split(";")[0].split("=", 1)
            cookies[name] = value
        return response

    page = browse("GET", url)
    assert page.status_code == 200, page.text
    action, hidden = form_of(page.text)
    done = browse(
        "POST", urljoin(url, action), data={**hidden, "email": email, "password": password}
    )
    assert done.status_code == 303, done.text
    callback = done.headers["Location"]

    # Authlib checks `state` against the callback's before it exchanges the code.
    token = client.fetch_token(
        meta["token_endpoint"],
        authorization_response=callback,
        state=state,
        code_verifier=verifier,
    )
    keys = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
    claims = jwt.decode(
        token["id_token"],
        keys,
        claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": issuer}},
        claims_params={
            "nonce": nonce,
            "client_id": client_id,
            "access_token": token["access_token"],
        },
    )
    claims.validate()
    userinfo = client.get(meta["userinfo_endpoint"], timeout=10).json()
    renewed = client.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
    print(
        json.dumps(
            {
                "sub": claims["sub"],
                "email": claims.get("email"),
                "amr": claims.get("amr"),
                "userinfo_sub": userinfo["sub"],
                "userinfo_email": userinfo.get("email"),
                "refreshed": renewed["access_token"] != token["access_token"],
            }
        )
    )


if __name__ == "__main__":
    main()
