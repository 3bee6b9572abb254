//! The deadlines of citizens' correction requests: "today" ([`Clock`], injectable so tests move
//! time without sleeping) and the periodic task ([`DeadlineKeeper`]) that records a passed
//! deadline on the request's stream, so the change feed carries it, and keeps the
//! `citydb_correction_requests_overdue` gauge.
//!
//! Idempotent across nodes and restarts: the overdue command's id is derived from the request and
//! the deadline (`overdue_command_id`), and the registry appends a command id once. Two nodes
//! running the task at the same moment append one event; the other is answered "already
//! executed".

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use citydb_domain::Date;
use citydb_domain::calendar::{WorkingCalendar, date_from_days};
use citydb_domain::correction_request::{RequestActor, RequestCommand, overdue_command_id};
use citydb_projections::Projections;
use citydb_registry::{Registry, RequestExecution, RequestRegistryError};

use crate::metrics::Metrics;

/// Viet Nam's offset from UTC (no daylight saving): a day starts at 17:00 UTC.
const VIETNAM_OFFSET_SECONDS: i64 = 7 * 3600;

/// Requests examined per run; the next run takes the rest.
const BATCH: usize = 500;

/// Today's date in Viet Nam, from the system clock or set by hand.
#[derive(Clone, Default)]
pub struct Clock {
    fixed: Option<Arc<RwLock<Date>>>,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.fixed {
            None => f.write_str("Clock(system)"),
            Some(_) => write!(f, "Clock(fixed {})", self.today()),
        }
    }
}

impl Clock {
    /// The system clock, in Viet Nam's time zone.
    pub fn system() -> Clock {
        Clock { fixed: None }
    }

    /// A clock that says `date` until [`Clock::set`] moves it (tests, demos).
    pub fn fixed(date: Date) -> Clock {
        Clock {
            fixed: Some(Arc::new(RwLock::new(date))),
        }
    }

    /// Moves a fixed clock (every clone sees it); no effect on the system clock.
    pub fn set(&self, date: Date) {
        if let Some(fixed) = &self.fixed {
            *fixed.write().unwrap_or_else(|p| p.into_inner()) = date;
        }
    }

    pub fn today(&self) -> Date {
        if let Some(fixed) = &self.fixed {
            return *fixed.read().unwrap_or_else(|p| p.into_inner());
        }
        let seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2));
        let days = (seconds + VIETNAM_OFFSET_SECONDS).div_euclid(86_400);
        // Years 1 to 9999 hold any system clock; day 0 (1970-01-01) is the floor of a clock
        // set before the epoch, and is a valid date.
        date_from_days(days.max(0))
            .or_else(|| date_from_days(0))
            .unwrap_or_else(|| unreachable!("1970-01-01 is a valid date"))
    }
}

/// What one run of the task did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeadlineRun {
    /// Overdue events this run appended.
    pub recorded: usize,
    /// Open requests with a recorded overdue deadline afterwards (the gauge).
    pub overdue: u64,
}

/// The periodic deadline check (see the module docs).
#[derive(Clone)]
pub struct DeadlineKeeper {
    registry: Registry,
    projections: Projections,
    clock: Clock,
    overdue: Arc<AtomicU64>,
}

impl DeadlineKeeper {
    /// A keeper whose gauge `citydb_correction_requests_overdue` is registered on `metrics`.
    pub fn new(
        registry: Registry,
        projections: Projections,
        clock: Clock,
        metrics: &Metrics,
    ) -> DeadlineKeeper {
        let overdue = Arc::new(AtomicU64::new(0));
        let gauge = overdue.clone();
        metrics.register_gauge(
            "citydb_correction_requests_overdue",
            "Open correction requests with a passed deadline recorded on their stream.",
            Arc::new(move || Some(gauge.load(Ordering::Relaxed) as f64)),
        );
        DeadlineKeeper {
            registry,
            projections,
            clock,
            overdue,
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Records every deadline passed by today that is not recorded yet, then refreshes the
    /// gauge. The projections propose candidates; the request's stream decides (`decide`
    /// refuses a deadline not passed or recorded already, and such refusals are expected when
    /// another node got there first).
    pub async fn run_once(&self) -> Result<DeadlineRun, RequestRegistryError> {
        let today = self.clock.today();
        let calendar = WorkingCalendar::vietnam();
        let candidates = self
            .projections
            .requests_past_deadline(today.to_string(), BATCH)
            .await
            .map_err(|e| citydb_registry::RegistryError::Corrupt {
                stream: "projections".to_owned(),
                reason: e.to_string(),
            })?;
        let mut run = DeadlineRun::default();
        let mut last = None;
        for row in candidates {
            let id = row.request.id;
            let Some(loaded) = self.registry.load_request(id).await? else {
                continue;
            };
            for deadline in loaded.request.deadlines_passed(today) {
                let execution = RequestExecution {
                    command_id: overdue_command_id(id, deadline),
                    actor: RequestActor::Clock,
                    context: Default::default(),
                    command: RequestCommand::RecordCorrectionRequestOverdue {
                        request: id,
                        deadline,
                        on: today,
                    },
                };
                match self.registry.execute_request(execution, calendar).await {
                    Ok(done) => {
                        if !done.already_executed {
                            run.recorded += 1;
                        }
                        last = done.last_position.max(last);
                    }
                    // Another node recorded it, or the request closed meanwhile.
                    Err(RequestRegistryError::Refused(refusal)) => {
                        tracing::debug!(request = %id, %refusal, "overdue not recorded");
                    }
                    Err(other) => return Err(other),
                }
            }
        }
        if let Some(position) = last {
            // The gauge counts from the projections: let them see this run's events first.
            let _ = self
                .projections
                .wait_for(position, Duration::from_secs(10))
                .await;
        }
        if let Ok(count) = self.projections.overdue_requests().await {
            self.overdue.store(count, Ordering::Relaxed);
            run.overdue = count;
        }
        Ok(run)
    }

    /// Runs [`DeadlineKeeper::run_once`] now and every `interval`, for as long as the task runs.
    pub fn spawn(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let keeper = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = keeper.run_once().await {
                    tracing::warn!(error = %e, "correction-request deadline check failed");
                }
            }
        })
    }
}
