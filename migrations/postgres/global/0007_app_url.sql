-- Where a tenant's hosted pages send the user afterwards (its browser app), if set.
ALTER TABLE tenants ADD COLUMN app_url TEXT;
