//! Per-principal admission: a request rate (token bucket) and a bound on requests in flight, so
//! that one client system cannot starve the others on a shared node.
//!
//! Checked after authentication and before any GraphQL work, for every HTTP request to
//! `/graphql` and every WebSocket connection (a connection counts as one request in flight for
//! as long as it is open); every operation sent over a connection is counted against the rate
//! ([`admit_operation`]). A refusal is `429 Too Many Requests` with `Retry-After` and
//! `extensions.code` `RATE_LIMITED`. State is one small entry per principal id, so it is bounded
//! by the configured principals, not by the callers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_graphql::extensions::ExtensionContext;
use async_graphql::{ServerError, ServerResult};

use crate::error::ApiError;

/// What each principal may use. Zero turns a bound off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrincipalLimits {
    /// Sustained requests per second (0: no rate limit).
    pub requests_per_second: u32,
    /// Requests that may come at once after a quiet period (at least 1 when a rate is set).
    pub burst: u32,
    /// Requests (and open WebSocket connections) in flight at once (0: no bound).
    pub max_in_flight: u32,
}

impl Default for PrincipalLimits {
    /// No rate limit (a service's legitimate load varies too much for one default), and at most
    /// 64 requests in flight per principal: more than the worker threads of a node, so one
    /// principal can saturate the node only while nobody else is asking.
    fn default() -> Self {
        PrincipalLimits {
            requests_per_second: 0,
            burst: 0,
            max_in_flight: 64,
        }
    }
}

/// Why a request was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Over the rate: retry after this long.
    Rate { retry_after: Duration },
    /// Too many requests in flight.
    InFlight { limit: u32 },
}

impl Refusal {
    /// Whole seconds for `Retry-After` (at least 1).
    pub fn retry_after_secs(&self) -> u64 {
        match self {
            Refusal::Rate { retry_after } => retry_after.as_secs_f64().ceil().max(1.0) as u64,
            Refusal::InFlight { .. } => 1,
        }
    }

    pub fn message(&self, principal: &str) -> String {
        match self {
            Refusal::Rate { .. } => format!(
                "principal {principal:?} is over its request rate; retry after {} s",
                self.retry_after_secs()
            ),
            Refusal::InFlight { limit } => format!(
                "principal {principal:?} already has {limit} requests in flight; retry when one \
                 has finished"
            ),
        }
    }
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

#[derive(Default)]
struct Usage {
    bucket: Mutex<Option<Bucket>>,
    in_flight: AtomicU32,
}

/// Admission state of one node.
pub struct Throttle {
    limits: PrincipalLimits,
    usage: Mutex<HashMap<String, Arc<Usage>>>,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// A request in flight; dropping it frees its place.
pub struct Permit {
    usage: Arc<Usage>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.usage.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Throttle {
    pub fn new(limits: PrincipalLimits) -> Self {
        Throttle {
            limits,
            usage: Mutex::new(HashMap::new()),
        }
    }

    pub fn limits(&self) -> PrincipalLimits {
        self.limits
    }

    fn usage(&self, principal: &str) -> Arc<Usage> {
        let mut map = self.usage.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(principal.to_owned()).or_default().clone()
    }

    /// Admits one request of `principal` now, or says why not.
    pub fn admit(&self, principal: &str) -> Result<Permit, Refusal> {
        self.admit_at(principal, Instant::now())
    }

    fn admit_at(&self, principal: &str, now: Instant) -> Result<Permit, Refusal> {
        let usage = self.usage(principal);
        let limit = self.limits.max_in_flight;
        let before = usage.in_flight.fetch_add(1, Ordering::AcqRel);
        let permit = Permit { usage };
        if limit > 0 && before >= limit {
            return Err(Refusal::InFlight { limit });
        }
        self.take_token(&permit.usage, now)?;
        Ok(permit)
    }

    /// Counts one operation sent over an open WebSocket connection against the rate (the
    /// connection itself already holds its place in flight).
    pub fn admit_operation(&self, principal: &str) -> Result<(), Refusal> {
        self.take_token(&self.usage(principal), Instant::now())
    }

    fn take_token(&self, usage: &Usage, now: Instant) -> Result<(), Refusal> {
        let rate = f64::from(self.limits.requests_per_second);
        if rate <= 0.0 {
            return Ok(());
        }
        let capacity = f64::from(self.limits.burst.max(1));
        let mut bucket = usage.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let b = bucket.get_or_insert(Bucket {
            tokens: capacity,
            refilled: now,
        });
        let elapsed = now.saturating_duration_since(b.refilled).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(capacity);
        b.refilled = now;
        if b.tokens < 1.0 {
            return Err(Refusal::Rate {
                retry_after: Duration::from_secs_f64((1.0 - b.tokens) / rate),
            });
        }
        b.tokens -= 1.0;
        Ok(())
    }
}

/// What an admitted WebSocket connection keeps in its data: its place in flight, and what each
/// operation it sends needs to be counted against the rate ([`admit_operation`]).
pub struct ConnectionAdmission {
    pub throttle: Arc<Throttle>,
    pub principal: String,
    pub permit: Permit,
}

/// Counts every operation sent over a WebSocket connection against its principal's rate, so
/// that one connection cannot send without bound. HTTP requests are counted before GraphQL
/// (they carry no [`ConnectionAdmission`]). Called by
/// [`crate::schema::hooks::SchemaHooks`] in `prepare_request`, on every transport.
pub(crate) fn admit_operation(ctx: &ExtensionContext<'_>) -> ServerResult<()> {
    if let Some(a) = ctx.data_opt::<ConnectionAdmission>()
        && let Err(refusal) = a.throttle.admit_operation(&a.principal)
    {
        let err = ApiError::RateLimited {
            message: refusal.message(&a.principal),
            retry_after_secs: refusal.retry_after_secs(),
        };
        let mut e = ServerError::new(err.to_string(), None);
        err.write_extensions(e.extensions.get_or_insert_with(Default::default));
        return Err(e);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_refills_and_says_when_to_retry() {
        let t = Throttle::new(PrincipalLimits {
            requests_per_second: 2,
            burst: 3,
            max_in_flight: 0,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            drop(t.admit_at("tax", t0).unwrap());
        }
        let refused = t.admit_at("tax", t0).err().unwrap();
        assert_eq!(refused.retry_after_secs(), 1);
        assert!(
            matches!(refused, Refusal::Rate { retry_after } if retry_after == Duration::from_millis(500))
        );
        // Another principal is not affected.
        assert!(t.admit_at("land", t0).is_ok());
        // Half a second later, one more.
        let t1 = t0 + Duration::from_millis(500);
        assert!(t.admit_at("tax", t1).is_ok());
        assert!(t.admit_at("tax", t1).is_err());
    }

    #[test]
    fn in_flight_requests_are_bounded_and_freed_on_drop() {
        let t = Throttle::new(PrincipalLimits {
            requests_per_second: 0,
            burst: 0,
            max_in_flight: 2,
        });
        let a = t.admit("tax").unwrap();
        let _b = t.admit("tax").unwrap();
        assert_eq!(t.admit("tax").err(), Some(Refusal::InFlight { limit: 2 }));
        drop(a);
        assert!(t.admit("tax").is_ok());
    }
}
