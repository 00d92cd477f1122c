//! This node's in-memory index of the revocation log: which sessions (and service tokens) have
//! ended, until when. Verification asks it instead of a tenant's database, so a random tenant's
//! verification costs what a warm one does. Fed by the `revocation_index` job from the global
//! log (every node sees every other node's and the CLI's revocations within its poll), and at
//! once by this node's own revocations. An entry leaves when its `until` has passed: no token
//! it covers can be valid any more.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::RwLock;

use crate::store::revocation_log::LogEntry;

/// The index: tenant → subject → until (Unix seconds).
#[derive(Default)]
pub struct RevocationIndex {
    entries: RwLock<HashMap<String, HashMap<String, i64>>>,
    /// The newest log position read into the index.
    position: AtomicI64,
}

impl RevocationIndex {
    /// An empty index at position 0.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `subject` of `tenant` is revoked at `now`.
    #[must_use]
    pub fn is_revoked(&self, tenant: &str, subject: &str, now: i64) -> bool {
        let entries = self
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .get(tenant)
            .and_then(|subjects| subjects.get(subject))
            .is_some_and(|until| *until > now)
    }

    /// Adds one revocation (this node's own, at once; the log brings it again, harmlessly).
    pub fn insert(&self, tenant: &str, subject: &str, until: i64) {
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = entries
            .entry(tenant.to_owned())
            .or_default()
            .entry(subject.to_owned())
            .or_insert(until);
        *slot = (*slot).max(until);
    }

    /// Adds entries read from the log, and moves the position past them.
    pub fn apply(&self, read: &[LogEntry]) {
        for entry in read {
            self.insert(&entry.tenant, &entry.subject, entry.until);
        }
        if let Some(last) = read.last() {
            self.position.fetch_max(last.position, Ordering::AcqRel);
        }
    }

    /// The newest log position read.
    #[must_use]
    pub fn position(&self) -> i64 {
        self.position.load(Ordering::Acquire)
    }

    /// Forgets entries whose `until` has passed at `now`.
    pub fn sweep(&self, now: i64) {
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.retain(|_, subjects| {
            subjects.retain(|_, until| *until > now);
            !subjects.is_empty()
        });
    }

    /// How many entries the index holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .map(HashMap::len)
            .sum()
    }

    /// Whether the index holds nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads every log entry after the index's position into it (in batches); answers how many.
/// A tenant's deletion read there is forgotten in `directory` (a running node's; a starting
/// node's is empty).
pub async fn catch_up(
    index: &RevocationIndex,
    store: &crate::store::Store,
    directory: Option<&crate::tenants::Directory>,
    now: i64,
) -> crate::store::StoreResult<usize> {
    const BATCH: i64 = 1_000;
    let mut total = 0;
    loop {
        let read = store
            .revocations_after(index.position(), now, BATCH)
            .await?;
        if let Some(directory) = directory {
            for entry in read
                .iter()
                .filter(|e| e.subject == tessera_core::edge::TENANT_DELETED)
            {
                if let Ok(slug) = tessera_core::model::TenantSlug::parse(&entry.tenant) {
                    directory.forget(&slug);
                }
            }
        }
        index.apply(&read);
        total += read.len();
        if i64::try_from(read.len()).unwrap_or(0) < BATCH {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(position: i64, subject: &str, until: i64) -> LogEntry {
        LogEntry {
            position,
            tenant: "acme".into(),
            subject: subject.into(),
            until,
        }
    }

    #[test]
    fn entries_hold_until_their_end_then_leave() {
        let index = RevocationIndex::new();
        index.apply(&[entry(3, "s1", 100), entry(7, "s2", 50)]);
        assert_eq!(index.position(), 7);
        assert!(index.is_revoked("acme", "s1", 99));
        assert!(!index.is_revoked("acme", "s1", 100));
        assert!(!index.is_revoked("globex", "s1", 0));
        index.sweep(60);
        assert_eq!(index.len(), 1);
        index.apply(&[]);
        assert_eq!(index.position(), 7);
    }
}
