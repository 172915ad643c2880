//! What flows between operators: batches of records, watermarks, checkpoint
//! barriers and the end of the stream.

use riverbed_state_store::Epoch;

use crate::time::Timestamp;

#[derive(Debug, Clone, PartialEq)]
pub enum Msg<T> {
    /// Records, in arrival order.
    Data(Vec<T>),
    /// No record with a smaller timestamp follows on this channel.
    Watermark(Timestamp),
    /// Everything before belongs to epoch `e`; everything after to `e + 1`.
    Barrier(Epoch),
    /// The stream is over; nothing follows.
    End,
}

impl<T> Msg<T> {
    /// A control message carried over to another record type. Panics on
    /// `Data`, which callers transform themselves.
    pub fn control<U>(self) -> Msg<U> {
        match self {
            Msg::Data(_) => unreachable!("data is transformed, not cast"),
            Msg::Watermark(w) => Msg::Watermark(w),
            Msg::Barrier(e) => Msg::Barrier(e),
            Msg::End => Msg::End,
        }
    }
}
