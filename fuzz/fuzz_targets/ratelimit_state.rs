//! Rate-limit state as stored (8 bytes) and any decision on it: never a panic, and a refusal
//! always says when to retry.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_core::ratelimit::{check, Decision, GcraState, Quota};

fuzz_target!(|data: (u64, u64, u32, u64)| {
    let (stored, now_ms, limit, period_ms) = data;
    let state = GcraState::from_bytes(stored.to_le_bytes());
    let quota = Quota {
        limit: limit.max(1),
        period_ms: period_ms.max(1),
    };
    let (decision, next) = check(Some(state), now_ms, quota);
    assert_eq!(GcraState::from_bytes(next.to_bytes()), next);
    if let Decision::Limited { .. } = decision {
        assert!(decision.retry_after_secs().is_some());
    }
});
