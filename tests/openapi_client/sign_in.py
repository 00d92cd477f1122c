"""A client generated from the served /openapi.json (openapi-python-client) signs in, refreshes
and verifies: the document is what a client needs, not only what a validator accepts.

Usage: sign_in.py <base URL> <email> <password>   (the generated package on PYTHONPATH)
"""
import sys

from tessera_client import AuthenticatedClient, Client
from tessera_client.api.auth import canonical_login, canonical_refresh, canonical_verify
from tessera_client.models import LoginRequest, RefreshRequest, TokenResponse, VerifyAnswer

base, email, password = sys.argv[1:4]
client = Client(base_url=base, raise_on_unexpected_status=True)

signed_in = canonical_login.sync(
    client=client, body=LoginRequest(email=email, password=password, tenant="default")
)
assert isinstance(signed_in, TokenResponse), signed_in

refreshed = canonical_refresh.sync(
    client=client, body=RefreshRequest(refresh_token=signed_in.refresh_token)
)
assert isinstance(refreshed, TokenResponse), refreshed
assert refreshed.refresh_token != signed_in.refresh_token

authenticated = AuthenticatedClient(
    base_url=base, token=refreshed.access_token, raise_on_unexpected_status=True
)
answer = canonical_verify.sync(client=authenticated)
assert isinstance(answer, VerifyAnswer), answer
assert answer.valid and answer.tenant == "default", answer
print("generated client: signed in, refreshed and verified as", answer.user.to_dict())
