//! Shared assertions and test doubles: metric sums read back from the emulator, and the
//! production sessions table with a hook run before each ending write.

use std::future::Future;

use sessionwarden_aws::sessions::DynamoSessions;
use sessionwarden_core::cascade_message::Target;
use sessionwarden_core::error::PortResult;
use sessionwarden_core::ports::{
    CandidatePage, EndOutcome, Filing, MemberPage, PageRequest, Scope, SessionStore, Termination,
};
use sessionwarden_core::session::SessionId;
use sessionwarden_local::metrics::SeriesSum;

/// Looks up the sum of one series in a read-back list.
pub fn metric(series: &[SeriesSum], name: &str, dims: &[(&str, &str)]) -> Option<f64> {
    series
        .iter()
        .find(|s| {
            s.name == name
                && s.dimensions.len() == dims.len()
                && dims
                    .iter()
                    .all(|(k, v)| s.dimensions.iter().any(|(a, b)| a == k && b == v))
        })
        .map(|s| s.sum)
}

/// One expected series: its name, its dimensions and its sum.
pub type ExpectedMetric<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);

/// Asserts that every `(name, dimensions, sum)` of `expected` is in `series` with exactly that sum.
pub fn assert_metrics(series: &[SeriesSum], expected: &[ExpectedMetric<'_>]) {
    for &(name, dims, sum) in expected {
        assert_eq!(
            metric(series, name, dims),
            Some(sum),
            "metric {name} {dims:?} in {series:#?}"
        );
    }
}

/// What a [`HookedSessions`] does before each ending write; an error is returned instead of
/// writing.
pub trait BeforeEnd: Send + Sync {
    /// Runs before `end` of session `id`.
    fn before_end(&self, id: &SessionId) -> impl Future<Output = PortResult<()>> + Send;
}

/// A production sessions table (native by default), with `hook` run before each `end`.
pub struct HookedSessions<B, S = DynamoSessions> {
    /// The real table.
    pub inner: S,
    /// What happens before each ending write.
    pub hook: B,
}

impl<B: BeforeEnd, S: SessionStore> SessionStore for HookedSessions<B, S> {
    async fn due(&self, scope: &Scope, now: i64, page: PageRequest) -> PortResult<CandidatePage> {
        self.inner.due(scope, now, page).await
    }

    async fn members(&self, target: &Target, page: PageRequest) -> PortResult<MemberPage> {
        self.inner.members(target, page).await
    }

    async fn end(&self, id: &SessionId, t: &Termination) -> PortResult<EndOutcome> {
        self.hook.before_end(id).await?;
        self.inner.end(id, t).await
    }

    async fn file(&self, filings: &[Filing]) -> PortResult<()> {
        self.inner.file(filings).await
    }

    async fn notes(
        &self,
        ids: &[SessionId],
    ) -> PortResult<std::collections::HashMap<SessionId, String>> {
        self.inner.notes(ids).await
    }
}
