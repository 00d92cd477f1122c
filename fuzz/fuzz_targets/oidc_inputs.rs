//! What a relying party or a browser sends the OpenID provider, as core reads it: a redirect
//! URI, a PKCE verifier and challenge, `prompt`, `scope`, a form body and a provider path. None
//! panics, and an accepted redirect URI always has an origin for the page's `form-action`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::oidc::{
    check_redirect_uri, code_challenge_is_well_formed, granted_scopes, origin_of, pkce_matches,
    Prompt, SCOPES,
};
use tessera_core::policy::{body_fields, path_tenant, AccountField};

fuzz_target!(|data: &[u8]| {
    let fields = body_fields(data);
    let served = tessera_core::model::TenantSlug::parse("default").ok();
    if let Some(served) = &served {
        let _ = AccountField::EmailInPathTenant.subject(&fields, served);
        let _ = AccountField::ClientInPathTenant.subject(&fields, served);
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if check_redirect_uri(text).is_ok() {
        assert!(origin_of(text).is_some(), "{text}");
    }
    let (verifier, challenge) = text.split_once(' ').unwrap_or((text, text));
    if pkce_matches(verifier, challenge) {
        assert!(code_challenge_is_well_formed(challenge));
    }
    let _ = Prompt::parse(Some(text));
    assert!(granted_scopes(text).iter().all(|s| SCOPES.contains(s)));
    let _ = path_tenant(text);
});
