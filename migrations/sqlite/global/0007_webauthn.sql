-- A tenant's WebAuthn relying party (`--rp-id`, `--webauthn-origin`): NULL takes them from
-- TESSERA_PUBLIC_URL. Passkeys are bound to the RP ID: changing it loses every passkey.
ALTER TABLE tenants ADD COLUMN rp_id TEXT;
ALTER TABLE tenants ADD COLUMN webauthn_origin TEXT;
