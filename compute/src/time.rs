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
