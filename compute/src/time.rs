//! Event time: timestamps, watermarks and how sources derive them.

/// Milliseconds since the epoch, as in Flink.
pub type Timestamp = i64;

/// The watermark before any data: nothing is known yet.
pub const MIN_WATERMARK: Timestamp = i64::MIN;
/// The watermark at the end of a bounded input: every window may fire.
pub const MAX_WATERMARK: Timestamp = i64::MAX;

/// Bounded out-of-orderness, Flink's `forBoundedOutOfOrderness`: the
/// watermark trails the largest timestamp seen by `max_delay_ms` (+1 ms so a
/// record at exactly the watermark is still on time).
#[derive(Debug, Clone, Copy)]
pub struct WatermarkStrategy {
    pub max_delay_ms: i64,
}

impl WatermarkStrategy {
    pub fn bounded(max_delay_ms: i64) -> Self {
        WatermarkStrategy { max_delay_ms }
    }

    pub fn watermark(&self, max_seen: Timestamp) -> Timestamp {
        if max_seen == MIN_WATERMARK {
            MIN_WATERMARK
        } else {
            max_seen.saturating_sub(self.max_delay_ms).saturating_sub(1)
        }
    }
}

/// Reads the event time of a record.
pub type TimestampFn<T> = std::sync::Arc<dyn Fn(&T) -> Timestamp + Send + Sync>;

/// Extracts the key of a record.
pub type KeyFn<T, K> = std::sync::Arc<dyn Fn(&T) -> K + Send + Sync>;

/// Where processing time comes from. Operators never read the wall clock
/// themselves: the runtime hands them `now()`, so a test can drive time
/// by hand and a replay is exact.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// The machine's wall clock, in milliseconds since the Unix epoch.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place wall time enters the runtime
    fn now(&self) -> Timestamp {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as Timestamp)
            .unwrap_or(0)
    }
}

/// A clock set by hand (tests, simulations).
#[derive(Debug, Default)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock(std::sync::atomic::AtomicI64::new(start))
    }

    pub fn set(&self, t: Timestamp) {
        self.0.store(t, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}
