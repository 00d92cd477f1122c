//! The admin APIs' pages: an opaque cursor (the last item's sort key, base64url) and a limit,
//! both checked at the door, so that a malformed one is a 400, never a scan from the start.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::{ServiceError, ServiceResult};

/// Items per page unless the request says.
pub const DEFAULT_LIMIT: u32 = 50;
/// The most items a page holds.
pub const MAX_LIMIT: u32 = 200;
/// The longest cursor accepted, in characters (an address or a slug and a time, encoded).
const MAX_CURSOR_CHARS: usize = 512;

/// A page's size: `limit` if given, between 1 and [`MAX_LIMIT`]; `InvalidInput`
/// `invalid_limit` otherwise.
pub fn limit(given: Option<u32>) -> ServiceResult<u32> {
    match given.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(n),
        _ => Err(ServiceError::InvalidInput {
            code: "invalid_limit",
            detail: format!("limit is between 1 and {MAX_LIMIT}"),
        }),
    }
}

/// The cursor of a page that ends at the item whose sort key is `key`.
#[must_use]
pub fn encode(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

/// A cursor this API did not hand out, or not for this request: `InvalidInput`
/// `invalid_cursor`.
#[must_use]
pub fn invalid() -> ServiceError {
    ServiceError::InvalidInput {
        code: "invalid_cursor",
        detail: "cursor is not one this API handed out for this request; start again without it"
            .into(),
    }
}

/// The sort key a cursor carries; [`invalid`] for anything this API did not hand out (not
/// base64url, not UTF-8, too long).
pub fn decode(cursor: &str) -> ServiceResult<String> {
    if cursor.len() > MAX_CURSOR_CHARS {
        return Err(invalid());
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    String::from_utf8(bytes).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_what_was_never_handed_out() {
        assert_eq!(
            decode(&encode("ann@example.com")).unwrap(),
            "ann@example.com"
        );
        for bad in ["%%%", "not base64!", &"A".repeat(600), "_w"] {
            assert!(decode(bad).is_err(), "{bad}");
        }
        assert_eq!(limit(None).unwrap(), 50);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(201)).is_err());
        assert_eq!(limit(Some(200)).unwrap(), 200);
    }
}
