//! Property tests: the rate limiter's promise, state serialisation, and the parsers.

use proptest::prelude::*;
use tessera_core::model::{Email, TenantSlug};
use tessera_core::ratelimit::{check, Decision, GcraState, Quota};
use tessera_core::token::{OpaqueToken, TokenKind};

fn quota() -> impl Strategy<Value = Quota> {
    (1u32..=10, 1u64..=120_000).prop_map(|(limit, period_ms)| Quota { limit, period_ms })
}

/// Request times as gaps from a start, each gap up to 1.5 periods, many of them zero so that
/// bursts are common.
fn arrivals(max_gap: u64) -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(prop_oneof![Just(0u64), 0..=max_gap], 1..200).prop_map(|gaps| {
        gaps.iter()
            .scan(1_700_000_000_000u64, |t, gap| {
                *t += gap;
                Some(*t)
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_window_admits_more_than_one_burst_plus_the_rate(
        (quota, times) in quota().prop_flat_map(|q| (Just(q), arrivals(q.period_ms * 3 / 2)))
    ) {
        let mut state = None;
        let mut admitted = Vec::new();
        for &now in &times {
            let (decision, next) = check(state, now, quota);
            if decision.is_allowed() {
                admitted.push(now);
            }
            state = Some(next);
        }
        let interval = quota.interval_ms();
        for width in [interval, quota.period_ms / 2 + 1, quota.period_ms, quota.period_ms * 3] {
            let bound = quota.limit as usize + usize::try_from(width / interval).unwrap_or(usize::MAX);
            for (i, &start) in admitted.iter().enumerate() {
                let in_window = admitted[i..].iter().take_while(|&&t| t < start + width).count();
                prop_assert!(in_window <= bound,
                    "{in_window} admitted in [{start}, +{width}) with limit {} per {}", quota.limit, quota.period_ms);
            }
        }
    }

    #[test]
    fn remaining_is_exactly_what_is_admitted_next(
        quota in quota(), warmup in 0usize..12, now in 0u64..1_000_000_000
    ) {
        let mut state = None;
        for _ in 0..warmup {
            state = Some(check(state, now, quota).1);
        }
        let (decision, next) = check(state, now, quota);
        if let Decision::Allowed { remaining, .. } = decision {
            let mut state = next;
            for _ in 0..remaining {
                let (d, n) = check(Some(state), now, quota);
                prop_assert!(d.is_allowed());
                state = n;
            }
            prop_assert!(!check(Some(state), now, quota).0.is_allowed());
        }
    }

    #[test]
    fn a_refusal_says_when_to_come_back(quota in quota(), now in 0u64..1_000_000_000) {
        let mut state = None;
        for _ in 0..quota.limit {
            state = Some(check(state, now, quota).1);
        }
        let (decision, _) = check(state, now, quota);
        let Decision::Limited { retry_after_ms, .. } = decision else {
            return Err(TestCaseError::fail("the limit+1th request at one instant must be limited"));
        };
        prop_assert!(!check(state, now + retry_after_ms - 1, quota).0.is_allowed());
        prop_assert!(check(state, now + retry_after_ms, quota).0.is_allowed());
    }

    #[test]
    fn state_round_trips_through_bytes_and_json(tat_ms in any::<u64>()) {
        let state = GcraState { tat_ms };
        prop_assert_eq!(GcraState::from_bytes(state.to_bytes()), state);
        let json = serde_json::to_string(&state).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back: GcraState = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, state);
    }

    #[test]
    fn any_accepted_slug_yields_a_safe_schema_name(input in "\\PC{0,70}|[a-z0-9-]{0,60}") {
        if let Ok(slug) = TenantSlug::parse(&input) {
            let schema = slug.schema_name();
            prop_assert!(schema.len() <= 63);
            prop_assert!(schema.starts_with("tenant_"));
            prop_assert!(schema.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
        }
    }

    #[test]
    fn email_normalisation_is_idempotent(input in "\\PC{0,40}|[A-Za-z0-9.+]{1,20}@[A-Za-z0-9]{1,10}\\.[a-z]{2,4}") {
        if let Ok(email) = Email::parse(&input) {
            prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
        }
    }

    #[test]
    fn tokens_round_trip_and_any_single_change_is_refused(
        random in any::<[u8; 32]>(), index in 7usize..61, replacement in "[A-Za-z0-9_-]"
    ) {
        let tenant = TenantSlug::parse("acme").map_err(|e| TestCaseError::fail(e.to_string()))?;
        let token = OpaqueToken::generate(TokenKind::Refresh, &tenant, random);
        prop_assert_eq!(OpaqueToken::parse(TokenKind::Refresh, token.expose()).map(|t| t.digest()), Ok(token.digest()));
        let mut changed = token.expose().to_owned();
        changed.replace_range(index..=index, &replacement);
        if changed != token.expose() {
            prop_assert!(OpaqueToken::parse(TokenKind::Refresh, &changed).is_err());
        }
    }
}

/// A family of refresh tokens as the origin stores it, driven only by `refresh::decide`.
mod refresh_family {
    use proptest::prelude::*;
    use tessera_core::refresh::{decide, Presented, Verdict};

    /// Presentations: which token of the chain (past its end: an unknown token) and the seconds
    /// since the previous presentation.
    fn presentations() -> impl Strategy<Value = Vec<(usize, i64)>> {
        prop::collection::vec((0usize..8, prop_oneof![Just(0i64), 0i64..=20]), 1..60)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn a_family_has_one_live_token_and_reuse_after_grace_ends_it(
            steps in presentations(), grace in 0u64..=10, idle in prop_oneof![Just(0u64), 1u64..=100],
        ) {
            let mut rotated: Vec<Option<i64>> = vec![None];
            let mut active = true;
            let start = 1_700_000_000i64;
            let mut now = start;
            for (index, gap) in steps {
                now += gap;
                let presented = rotated.get(index).map(|&rotated_at| Presented {
                    family_active: active,
                    issued_at: index.checked_sub(1).and_then(|i| rotated[i]).unwrap_or(start),
                    rotated_at,
                    same_successor: true,
                });
                let verdict = decide(presented, now, grace, idle);
                match verdict {
                    Verdict::Rotate => {
                        prop_assert!(active);
                        prop_assert_eq!(index, rotated.len() - 1, "only the newest token rotates");
                        rotated[index] = Some(now);
                        rotated.push(None);
                    }
                    Verdict::GraceReplay => {
                        let at = rotated[index].expect("a replay is of a rotated token");
                        prop_assert!(now - at <= i64::try_from(grace).unwrap());
                    }
                    Verdict::RevokeFamily => {
                        let at = rotated[index].expect("only a rotated token is reuse");
                        prop_assert!(now - at > i64::try_from(grace).unwrap());
                        active = false;
                    }
                    Verdict::IdleTimeout => {
                        prop_assert!(active && idle > 0);
                        prop_assert_eq!(index, rotated.len() - 1, "only the newest token idles");
                        let issued = index.checked_sub(1).and_then(|i| rotated[i]).unwrap_or(start);
                        prop_assert!(now - issued > i64::try_from(idle).unwrap());
                        active = false;
                    }
                    Verdict::Invalid => {
                        prop_assert!(!active || index >= rotated.len());
                    }
                }
                if !active {
                    prop_assert!(matches!(
                        verdict,
                        Verdict::Invalid | Verdict::RevokeFamily | Verdict::IdleTimeout
                    ));
                }
                prop_assert_eq!(rotated.iter().filter(|r| r.is_none()).count(), 1);
            }
        }

        #[test]
        fn a_successor_that_is_not_this_tokens_never_gets_the_grace(
            rotated_at in 0i64..1_000, gap in 0i64..100, grace in 0u64..=10,
        ) {
            let presented = Presented { family_active: true, issued_at: 0, rotated_at: Some(rotated_at), same_successor: false };
            prop_assert_eq!(decide(Some(presented), rotated_at + gap, grace, 0), Verdict::RevokeFamily);
        }
    }
}
