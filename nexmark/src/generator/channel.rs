//! The channels bids come through, and their URLs (suite: the channel part of
//! `BidGenerator`).
//!
//! Rules kept from the suite: there are 4 hot channels (`Google`, `Facebook`,
//! `Baidu`, `Apple`) and `CHANNELS_NUMBER` (10 000) ordinary ones named
//! `channel-<number>`. Every channel has one fixed URL,
//! `https://www.nexmark.com/<a>/<b>/<c>/item.htm?query=1` where each part is
//! `next_string(5)` with `_` as the special character; for an ordinary channel
//! the URL gets `&channel_id=<abs(reverse_bits(number as i32))>` appended with
//! probability 9/10 (the absolute value wraps as Java's does, so channel 1
//! gets `-2147483648`).
//!
//! The suite draws these URLs from fresh unseeded generators once per process
//! and caches them. Here every URL is drawn from `(seed, channel)`, and the
//! whole table is built once per [`Generator`](super::Generator) and shared by
//! its clones. Names of ordinary channels are formatted when drawn.

use super::rng::{Rng, Stream};
use super::strings::push_string;

/// Number of ordinary channels.
pub(crate) const CHANNELS_NUMBER: u64 = 10_000;

/// Names of the hot channels.
pub(crate) const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];

/// Every channel's URL under one seed.
///
/// The ordinary channels' URLs are packed into one buffer (URL `c` is
/// `urls[offsets[c]..offsets[c + 1]]`): a bid picks a channel at random, and
/// one compact buffer costs fewer cache misses than 10 000 separate strings.
#[derive(Debug)]
pub(crate) struct Channels {
    hot_urls: [String; HOT_CHANNELS.len()],
    urls: String,
    offsets: Box<[u32]>,
}

impl Channels {
    /// Draws the URL of every channel from `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        let hot_urls = std::array::from_fn(|i| {
            let mut rng = Rng::new(seed, Stream::HotUrl, i as u64);
            let mut url = String::new();
            push_base_url(&mut rng, &mut url);
            url
        });
        let mut urls = String::with_capacity(CHANNELS_NUMBER as usize * 64);
        let mut offsets = Vec::with_capacity(CHANNELS_NUMBER as usize + 1);
        offsets.push(0);
        for c in 0..CHANNELS_NUMBER {
            let mut rng = Rng::new(seed, Stream::ChannelUrl, c);
            push_base_url(&mut rng, &mut urls);
            if rng.below(10) > 0 {
                let id = (c as i32).reverse_bits().wrapping_abs();
                urls.push_str("&channel_id=");
                urls.push_str(&id.to_string());
            }
            offsets.push(u32::try_from(urls.len()).expect("channel URLs fit in 4 GiB"));
        }
        Self {
            hot_urls,
            urls,
            offsets: offsets.into_boxed_slice(),
        }
    }

    /// Name and URL of hot channel `i` (`i < 4`).
    pub(crate) fn hot(&self, i: usize) -> (&'static str, &str) {
        (HOT_CHANNELS[i], &self.hot_urls[i])
    }

    /// URL of ordinary channel `c` (`c < CHANNELS_NUMBER`).
    pub(crate) fn url(&self, c: usize) -> &str {
        &self.urls[self.offsets[c] as usize..self.offsets[c + 1] as usize]
    }
}

/// The name of ordinary channel `c`: `channel-<c>`.
pub(crate) fn channel_name(c: u64) -> String {
    let mut name = Vec::with_capacity(13);
    name.extend_from_slice(b"channel-");
    crate::json::push_u64(&mut name, c);
    String::from_utf8(name).expect("ASCII")
}

/// Appends `https://www.nexmark.com/<a>/<b>/<c>/item.htm?query=1`.
fn push_base_url(rng: &mut Rng, url: &mut String) {
    url.push_str("https://www.nexmark.com/");
    for _ in 0..3 {
        push_string(rng, 5, b'_', url);
        url.push('/');
    }
    url.push_str("item.htm?query=1");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_have_the_suites_shape() {
        let channels = Channels::new(0);
        let mut with_id = 0;
        for c in 0..CHANNELS_NUMBER as usize {
            let url = channels.url(c);
            assert_eq!(channel_name(c as u64), format!("channel-{c}"));
            let rest = url.strip_prefix("https://www.nexmark.com/").unwrap();
            let parts: Vec<&str> = rest.splitn(4, '/').collect();
            assert_eq!(parts.len(), 4, "{url}");
            for part in &parts[..3] {
                assert!((3..5).contains(&part.len()), "{url}");
            }
            if let Some(id) = parts[3].strip_prefix("item.htm?query=1&channel_id=") {
                with_id += 1;
                let expected = (c as i32).reverse_bits().wrapping_abs();
                assert_eq!(id, expected.to_string());
            } else {
                assert_eq!(parts[3], "item.htm?query=1");
            }
        }
        assert!((8_800..9_200).contains(&with_id), "{with_id}");
        let (name, url) = channels.hot(1);
        assert_eq!(name, "Facebook");
        assert!(url.ends_with("/item.htm?query=1"));
    }

    #[test]
    fn channel_one_wraps_like_java() {
        assert_eq!(1i32.reverse_bits().wrapping_abs(), i32::MIN);
        assert_eq!(2i32.reverse_bits().wrapping_abs(), 1 << 30);
    }

    #[test]
    fn urls_depend_on_the_seed_only() {
        let a = Channels::new(5);
        let b = Channels::new(5);
        let c = Channels::new(6);
        assert_eq!(a.url(17), b.url(17));
        assert_eq!(a.hot(0), b.hot(0));
        assert_ne!(a.url(17), c.url(17));
    }
}
