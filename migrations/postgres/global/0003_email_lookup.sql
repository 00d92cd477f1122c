-- Whether the team/vault API's GET /api/exist-email/{email} answers for this tenant
-- (`tessera tenant create --exist-email off` turns it off).
ALTER TABLE tenants ADD COLUMN email_lookup BIGINT NOT NULL DEFAULT 1;
