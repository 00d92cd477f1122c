//! The refresh-token rule: what a presentation of a refresh token leads to.
//!
//! A sign-in starts a family (one session) with one refresh token. Each presentation of the
//! family's newest token rotates it: the token is marked used and its successor issued. A used
//! token presented again within the grace window receives the same successor (two tabs that
//! refresh at once must not sign the user out); presented after it, it is a sign that the token
//! was copied, and the whole family is revoked. Where an idle limit is set, a family whose
//! newest token went unused for longer than it ends at that token's next presentation. Tokens
//! of a revoked or expired family, and unknown tokens, are simply invalid.
//!
//! The origin reads the token's row under a lock, asks [`decide`], and applies the verdict in
//! the same transaction.

/// A presented refresh token as stored, with the state of its family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presented {
    /// Whether the family may still be used: not revoked, not past its absolute end, and its
    /// user not disabled.
    pub family_active: bool,
    /// When the token was issued (Unix seconds): the family's last use, for its newest token.
    pub issued_at: i64,
    /// When the token was rotated (Unix seconds), if it was.
    pub rotated_at: Option<i64>,
    /// Whether the successor recorded at rotation is the one this presentation derives (always
    /// true for a token presented as issued; false means the stored row is not this token's).
    pub same_successor: bool,
}

/// What to do with a presentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// First use of the family's newest token: mark it rotated and issue its successor.
    Rotate,
    /// A second use inside the grace window: answer with the same successor, change nothing.
    GraceReplay,
    /// A used token presented after the grace window: revoke the family, refuse.
    RevokeFamily,
    /// The family's newest token, presented after the family went unused for longer than the
    /// idle limit: end the family, refuse.
    IdleTimeout,
    /// Unknown token, or a revoked or expired family: refuse, change nothing.
    Invalid,
}

/// Whether a family last used at `last_used_at` has, at `now`, gone unused for longer than
/// `idle_secs` (0: no idle limit, never).
#[must_use]
pub fn idle_expired(last_used_at: i64, now: i64, idle_secs: u64) -> bool {
    let idle = i64::try_from(idle_secs).unwrap_or(i64::MAX);
    idle_secs > 0 && now.saturating_sub(last_used_at) > idle
}

/// Decides a presentation at `now` (Unix seconds) with a grace window of `grace_secs` and an
/// idle limit of `idle_secs` (0: none). `presented` is `None` for a token that is not stored.
#[must_use]
pub fn decide(presented: Option<Presented>, now: i64, grace_secs: u64, idle_secs: u64) -> Verdict {
    let Some(token) = presented else {
        return Verdict::Invalid;
    };
    if !token.family_active {
        return Verdict::Invalid;
    }
    match token.rotated_at {
        None if idle_expired(token.issued_at, now, idle_secs) => Verdict::IdleTimeout,
        None => Verdict::Rotate,
        Some(at) => {
            let grace = i64::try_from(grace_secs).unwrap_or(i64::MAX);
            let within_grace = now.saturating_sub(at) <= grace;
            if within_grace && token.same_successor {
                Verdict::GraceReplay
            } else {
                Verdict::RevokeFamily
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRESH: Presented = Presented {
        family_active: true,
        issued_at: 90,
        rotated_at: None,
        same_successor: true,
    };

    #[test]
    fn the_verdicts() {
        assert_eq!(decide(None, 100, 5, 0), Verdict::Invalid);
        assert_eq!(decide(Some(FRESH), 100, 5, 0), Verdict::Rotate);
        let used = Presented {
            rotated_at: Some(100),
            ..FRESH
        };
        assert_eq!(decide(Some(used), 105, 5, 0), Verdict::GraceReplay);
        assert_eq!(decide(Some(used), 106, 5, 0), Verdict::RevokeFamily);
        let ended = Presented {
            family_active: false,
            ..used
        };
        assert_eq!(decide(Some(ended), 101, 5, 0), Verdict::Invalid);
    }

    #[test]
    fn an_idle_limit_ends_a_family_left_unused_longer() {
        // Issued at 90 with a limit of 60: usable until 150 inclusive.
        assert_eq!(decide(Some(FRESH), 150, 5, 60), Verdict::Rotate);
        assert_eq!(decide(Some(FRESH), 151, 5, 60), Verdict::IdleTimeout);
        // No limit: only the family's absolute end (in `family_active`) applies.
        assert_eq!(decide(Some(FRESH), 1_000_000, 5, 0), Verdict::Rotate);
        // The limit does not change what a used token's presentation means.
        let used = Presented {
            rotated_at: Some(100),
            ..FRESH
        };
        assert_eq!(decide(Some(used), 105, 5, 10), Verdict::GraceReplay);
        assert_eq!(decide(Some(used), 500, 5, 10), Verdict::RevokeFamily);
        let ended = Presented {
            family_active: false,
            ..FRESH
        };
        assert_eq!(decide(Some(ended), 500, 5, 10), Verdict::Invalid);
    }
}
