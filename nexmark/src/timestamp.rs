//! Timestamps as text: `YYYY-MM-DD HH:MM:SS.sss` in UTC, the rendering of
//! the suite's `TIMESTAMP(3)` columns in event files.
//!
//! Written here rather than taken from a date crate because the format is
//! fixed and small, and the writer sits on the hot path of file generation.
//! Conversions between days since 1970-01-01 and (year, month, day) use the
//! proleptic Gregorian calendar, counted in 400-year eras of 146 097 days
//! with years starting on March 1 so that the leap day falls last (the
//! well-known "civil from days" method). The text form covers years 0000 to
//! 9999: [`MIN_TIMESTAMP_MS`] to [`MAX_TIMESTAMP_MS`].

/// Length of `YYYY-MM-DD HH:MM:SS.sss`.
pub const TIMESTAMP_LEN: usize = 23;

/// 0000-01-01 00:00:00.000 UTC in ms since the Unix epoch.
pub const MIN_TIMESTAMP_MS: i64 = -62_167_219_200_000;

/// 9999-12-31 23:59:59.999 UTC in ms since the Unix epoch.
pub const MAX_TIMESTAMP_MS: i64 = 253_402_300_799_999;

const MS_PER_DAY: i64 = 86_400_000;
const DAYS_PER_ERA: i64 = 146_097;
/// Days from 0000-03-01 (start of era 0) to 1970-01-01.
const UNIX_EPOCH_DAY: i64 = 719_468;

/// Appends `ms` (ms since the Unix epoch, within
/// [`MIN_TIMESTAMP_MS`]`..=`[`MAX_TIMESTAMP_MS`]) as `YYYY-MM-DD HH:MM:SS.sss`.
/// Returns `false`, appending nothing, if `ms` is out of that range.
pub fn format_timestamp(ms: i64, out: &mut Vec<u8>) -> bool {
    if !(MIN_TIMESTAMP_MS..=MAX_TIMESTAMP_MS).contains(&ms) {
        return false;
    }
    let (year, month, day) = civil_from_days(ms.div_euclid(MS_PER_DAY));
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (hour, minute) = (in_day / 3_600_000, in_day / 60_000 % 60);
    let (second, milli) = (in_day / 1000 % 60, in_day % 1000);
    let mut text = *b"0000-00-00 00:00:00.000";
    put_digits(&mut text[0..4], year);
    put_digits(&mut text[5..7], month);
    put_digits(&mut text[8..10], day);
    put_digits(&mut text[11..13], hour);
    put_digits(&mut text[14..16], minute);
    put_digits(&mut text[17..19], second);
    put_digits(&mut text[20..23], milli);
    out.extend_from_slice(&text);
    true
}

/// Day `days` since 1970-01-01 as `YYYY-MM-DD` (proleptic Gregorian),
/// e.g. the suite's `DATE_FORMAT(t, 'yyyy-MM-dd')`.
pub fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The timestamp as a `String` (for messages and tests).
pub fn timestamp_to_string(ms: i64) -> Option<String> {
    let mut out = Vec::with_capacity(TIMESTAMP_LEN);
    format_timestamp(ms, &mut out).then(|| out.into_iter().map(char::from).collect())
}

/// Parses exactly `YYYY-MM-DD HH:MM:SS.sss` (UTC) into ms since the Unix
/// epoch. The error says what is wrong.
pub fn parse_timestamp(text: &str) -> Result<i64, String> {
    let bytes = text.as_bytes();
    const DIGITS: [usize; 17] = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22];
    let shape_ok = bytes.len() == TIMESTAMP_LEN
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b' '
        && bytes[13] == b':'
        && bytes[16] == b':'
        && bytes[19] == b'.'
        && DIGITS.iter().all(|&i| bytes[i].is_ascii_digit());
    if !shape_ok {
        return Err(format!(
            "bad timestamp {text:?}: expected YYYY-MM-DD HH:MM:SS.sss"
        ));
    }
    let field = |range: std::ops::Range<usize>| {
        bytes[range]
            .iter()
            .fold(0i64, |acc, &b| acc * 10 + i64::from(b - b'0'))
    };
    let (year, month, day) = (field(0..4), field(5..7), field(8..10));
    let (hour, minute, second, milli) =
        (field(11..13), field(14..16), field(17..19), field(20..23));
    if !(1..=12).contains(&month) {
        return Err(format!(
            "bad timestamp {text:?}: month {month} is not 1..=12"
        ));
    }
    let month_days = days_in_month(year, month);
    if !(1..=month_days).contains(&day) {
        return Err(format!(
            "bad timestamp {text:?}: day {day} is not 1..={month_days} for that month"
        ));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(format!(
            "bad timestamp {text:?}: time of day {hour:02}:{minute:02}:{second:02} out of range"
        ));
    }
    let day_ms = days_from_civil(year, month, day) * MS_PER_DAY;
    Ok(day_ms + ((hour * 60 + minute) * 60 + second) * 1000 + milli)
}

/// Writes `value` as decimal digits filling `slot`, zero-padded.
fn put_digits(slot: &mut [u8], mut value: i64) {
    for digit in slot.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// (year, month 1..=12, day 1..=31) of day `days` since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + UNIX_EPOCH_DAY;
    let era = shifted.div_euclid(DAYS_PER_ERA);
    let day_of_era = shifted.rem_euclid(DAYS_PER_ERA); // 0..=146_096
                                                       // Year of the era, correcting for the leap days of every 4th, 100th and
                                                       // 400th year.
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March (0) to February (11), 153 days per 5 months.
    let march_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * march_month + 2) / 5 + 1;
    let month = if march_month < 10 {
        march_month + 3
    } else {
        march_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of (year, month 1..=12, day 1..=31).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Years start on March 1: January and February belong to the year before.
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let march_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * march_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * DAYS_PER_ERA + day_of_era - UNIX_EPOCH_DAY
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_instants() {
        let cases = [
            (0, "1970-01-01 00:00:00.000"),
            (1_436_918_400_000, "2015-07-15 00:00:00.000"),
            (1_436_918_400_123 + 3_723_000, "2015-07-15 01:02:03.123"),
            (951_782_400_000, "2000-02-29 00:00:00.000"),
            (-1, "1969-12-31 23:59:59.999"),
            (MIN_TIMESTAMP_MS, "0000-01-01 00:00:00.000"),
            (MAX_TIMESTAMP_MS, "9999-12-31 23:59:59.999"),
        ];
        for (ms, text) in cases {
            assert_eq!(timestamp_to_string(ms).as_deref(), Some(text));
            assert_eq!(parse_timestamp(text), Ok(ms));
        }
        assert_eq!(timestamp_to_string(MAX_TIMESTAMP_MS + 1), None);
        assert_eq!(timestamp_to_string(MIN_TIMESTAMP_MS - 1), None);
    }

    #[test]
    fn bad_text_is_rejected_with_a_reason() {
        let cases = [
            ("2015-07-15T00:00:00.000", "expected YYYY"),
            ("2015-07-15 00:00:00", "expected YYYY"),
            ("2015-13-15 00:00:00.000", "month 13"),
            ("2015-02-29 00:00:00.000", "day 29"),
            ("2015-07-15 24:00:00.000", "time of day"),
            ("2015-07-15 00:60:00.000", "time of day"),
            ("+015-07-15 00:00:00.000", "expected YYYY"),
        ];
        for (text, reason) in cases {
            let error = parse_timestamp(text).unwrap_err();
            assert!(error.contains(reason), "{text}: {error}");
        }
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(ms in MIN_TIMESTAMP_MS..=MAX_TIMESTAMP_MS) {
            let text = timestamp_to_string(ms).unwrap();
            prop_assert_eq!(text.len(), TIMESTAMP_LEN);
            prop_assert_eq!(parse_timestamp(&text), Ok(ms));
        }

        #[test]
        fn days_round_trip(days in -800_000i64..3_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert!((1..=12).contains(&m));
            prop_assert!(d >= 1 && d <= days_in_month(y, m));
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
