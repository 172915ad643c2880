//! q21, add channel id: bids from the four named channels get ids 0–3, the
//! others the `channel_id` parameter of their URL; bids with neither are
//! dropped.

use super::common::{bids, insert};
use super::Built;
use crate::model::Event;
use crate::row::Value;
use riverbed_compute::DataStream;

/// `REGEXP_EXTRACT(url, '(&|^)channel_id=([^&]*)', 2)`: the value of the
/// first `channel_id=` that starts the string or follows a `&`, up to the
/// next `&`.
pub fn channel_id_param(url: &str) -> Option<&str> {
    const KEY: &str = "channel_id=";
    let mut from = 0;
    while let Some(at) = url[from..].find(KEY) {
        let start = from + at;
        if start == 0 || url.as_bytes()[start - 1] == b'&' {
            let value = &url[start + KEY.len()..];
            return Some(value.split('&').next().unwrap_or(""));
        }
        from = start + 1;
    }
    None
}

/// The id of a named channel (compared lower-cased, as the SQL does).
pub fn named_channel_id(channel: &str) -> Option<&'static str> {
    const NAMED: [(&str, &str); 4] = [
        ("apple", "0"),
        ("google", "1"),
        ("facebook", "2"),
        ("baidu", "3"),
    ];
    NAMED
        .iter()
        .find(|(name, _)| channel.eq_ignore_ascii_case(name))
        .map(|&(_, id)| id)
}

pub fn build(events: DataStream<Event>) -> Built {
    bids(events, "q21-bids").flat_map("q21-channel-id", |b| {
        let id = match named_channel_id(&b.channel) {
            Some(id) => id.to_string(),
            None => channel_id_param(&b.url)?.to_string(),
        };
        Some(insert(vec![
            Value::int(b.auction),
            Value::int(b.bidder),
            Value::int(b.price),
            Value::Str(b.channel),
            Value::Str(id),
        ]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_like_the_suite_regex() {
        assert_eq!(channel_id_param("channel_id=7&x=1"), Some("7"));
        assert_eq!(
            channel_id_param("https://a/b?q=1&channel_id=42"),
            Some("42")
        );
        assert_eq!(channel_id_param("https://a/b?xchannel_id=42"), None);
        assert_eq!(
            channel_id_param("https://a/b?xchannel_id=1&channel_id=2"),
            Some("2")
        );
        assert_eq!(channel_id_param("a&channel_id=&b=1"), Some(""));
        assert_eq!(named_channel_id("GooGle"), Some("1"));
        assert_eq!(named_channel_id("channel-1"), None);
    }
}
