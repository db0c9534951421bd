"""The client side of the OAuth tests, played by authlib (a real OAuth 2.0 / OIDC client).

    oauth_client.py start BASE CLIENT_ID SECRET REDIRECT_URI
        -> {"uri", "state", "verifier", "nonce"}: the authorization URL (PKCE S256)
    oauth_client.py finish BASE CLIENT_ID SECRET REDIRECT_URI CALLBACK VERIFIER STATE NONCE
        -> exchanges the code, checks the ID token against the JWKS, calls userinfo and the
           API, refreshes: {"token", "id_claims", "userinfo", "api_status", "refreshed"}
    oauth_client.py cc BASE CLIENT_ID SECRET
        -> client credentials, then the API and introspection: {"token", "api_status", "introspection"}
"""
import json
import secrets
import sys

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt


def endpoints(base):
    meta = requests.get(base + "/.well-known/openid-configuration", timeout=10).json()
    # The issuer's public URL differs from the test's loopback address: keep the paths.
    def local(url):
        return base + "/" + url.split("/", 3)[3]
    return meta, {k: local(meta[k]) for k in (
        "authorization_endpoint", "token_endpoint", "userinfo_endpoint",
        "jwks_uri", "introspection_endpoint", "revocation_endpoint")}


def start(base, client_id, secret, redirect_uri):
    _, ep = endpoints(base)
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    s = OAuth2Session(client_id, secret, scope="openid items:read", redirect_uri=redirect_uri,
                      code_challenge_method="S256")
    uri, state = s.create_authorization_url(ep["authorization_endpoint"], code_verifier=verifier,
                                            nonce=nonce)
    return {"uri": uri, "state": state, "verifier": verifier, "nonce": nonce}


def finish(base, client_id, secret, redirect_uri, callback, verifier, state, nonce):
    meta, ep = endpoints(base)
    s = OAuth2Session(client_id, secret, scope="openid items:read", redirect_uri=redirect_uri,
                      code_challenge_method="S256", state=state)
    token = s.fetch_token(ep["token_endpoint"], authorization_response=callback,
                          code_verifier=verifier)
    jwks = JsonWebKey.import_key_set(requests.get(ep["jwks_uri"], timeout=10).json())
    claims = jwt.decode(token["id_token"], jwks, claims_options={
        "iss": {"essential": True, "value": meta["issuer"]},
        "aud": {"essential": True, "value": client_id},
        "nonce": {"essential": True, "value": nonce},
    })
    claims.validate()
    userinfo = s.get(ep["userinfo_endpoint"], timeout=10).json()
    api = s.get(base + "/api/items", timeout=10)
    refreshed = s.refresh_token(ep["token_endpoint"])
    api_after = requests.get(base + "/api/items", timeout=10,
                             headers={"authorization": "Bearer " + refreshed["access_token"]})
    return {"token": token, "id_claims": dict(claims), "userinfo": userinfo,
            "api_status": api.status_code, "refreshed": refreshed,
            "api_after_refresh": api_after.status_code}


def client_credentials(base, client_id, secret):
    _, ep = endpoints(base)
    s = OAuth2Session(client_id, secret, scope="items:read")
    token = s.fetch_token(ep["token_endpoint"], grant_type="client_credentials")
    api = s.get(base + "/api/items", timeout=10)
    intro = requests.post(ep["introspection_endpoint"], data={"token": token["access_token"]},
                          auth=(client_id, secret), timeout=10).json()
    return {"token": token, "api_status": api.status_code, "introspection": intro}


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    out = {"start": start, "finish": finish, "cc": client_credentials}[cmd](*args)
    print(json.dumps(out))
