//! Calendar arithmetic for log timestamps: UTC seconds since the Unix epoch, no time zones.
//!
//! Parsing is hand-written because it runs once per log line (19 M times for LastFM-1K).

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses `YYYY-MM-DD[T ]HH:MM[:SS[.fff]][Z|±HH:MM]` into Unix seconds (UTC).
/// A missing offset means UTC. Fractions of a second are dropped.
pub fn parse_datetime(s: &[u8]) -> Option<i64> {
    if s.len() < 16
        || s[4] != b'-'
        || s[7] != b'-'
        || (s[10] != b'T' && s[10] != b' ')
        || s[13] != b':'
    {
        return None;
    }
    let y = digits(&s[0..4])? as i64;
    let mo = digits(&s[5..7])?;
    let d = digits(&s[8..10])?;
    let h = digits(&s[11..13])?;
    let mi = digits(&s[14..16])?;
    let mut rest = &s[16..];
    let mut sec = 0;
    if rest.first() == Some(&b':') {
        sec = digits(rest.get(1..3)?)?;
        rest = &rest[3..];
        if rest.first() == Some(&b'.') {
            let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return None;
            }
            rest = &rest[1 + n..];
        }
    }
    let offset = match rest {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), hh @ ..] if hh.len() == 5 && hh[2] == b':' || hh.len() == 4 => {
            let (oh, om) = if hh.len() == 5 {
                (&hh[0..2], &hh[3..5])
            } else {
                (&hh[0..2], &hh[2..4])
            };
            let o = i64::from(digits(oh)? * 3600 + digits(om)? * 60);
            if *sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    if !(1..=12).contains(&mo)
        || d == 0
        || d > days_in_month(y, mo)
        || h > 23
        || mi > 59
        || sec > 60
    {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + i64::from(h * 3600 + mi * 60 + sec) - offset)
}

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (the LastFM-1K form).
pub fn format_datetime(t: i64) -> String {
    let mut out = String::with_capacity(20);
    push_datetime(&mut out, t);
    out
}

/// Appends `YYYY-MM-DDTHH:MM:SSZ` to `out` without allocating. Any `t` formats: years outside
/// 0000-9999 are written whole with their sign (ISO 8601's expanded form).
pub fn push_datetime(out: &mut String, t: i64) {
    let (y, m, d) = civil_from_days(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    if !(0..=9999).contains(&y) {
        use std::fmt::Write;
        let _ = write!(
            out,
            "{y:+}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            s / 3600,
            s / 60 % 60,
            s % 60
        );
        return;
    }
    let two = |out: &mut String, v: i64| {
        out.push((b'0' + (v / 10) as u8) as char);
        out.push((b'0' + (v % 10) as u8) as char);
    };
    two(out, y / 100);
    two(out, y % 100);
    out.push('-');
    two(out, m as i64);
    out.push('-');
    two(out, d as i64);
    out.push('T');
    two(out, s / 3600);
    out.push(':');
    two(out, s / 60 % 60);
    out.push(':');
    two(out, s % 60);
    out.push('Z');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects() {
        let t = parse_datetime(b"2009-05-04T23:08:57Z").unwrap();
        assert_eq!(t, 1_241_478_537);
        assert_eq!(format_datetime(t), "2009-05-04T23:08:57Z");
        assert_eq!(parse_datetime(b"2009-05-04 23:08"), Some(1_241_478_480));
        assert_eq!(
            parse_datetime(b"2009-05-04T23:08:57.123+02:00"),
            Some(1_241_478_537 - 7200)
        );
        assert_eq!(parse_datetime(b"2009-02-29T00:00:00Z"), None);
        assert_eq!(
            parse_datetime(b"2008-02-29T00:00:00Z")
                .map(format_datetime)
                .as_deref(),
            Some("2008-02-29T00:00:00Z")
        );
        assert_eq!(parse_datetime(b"2009-13-01T00:00:00Z"), None);
        assert_eq!(parse_datetime(b"2009-05-04T23:08:57Zjunk"), None);
        for t in [-86_401i64, 0, 951_782_400, 4_102_444_799] {
            assert_eq!(parse_datetime(format_datetime(t).as_bytes()), Some(t));
        }
    }

    #[test]
    fn any_time_formats_without_overflow() {
        assert_eq!(format_datetime(-62_167_219_200), "0000-01-01T00:00:00Z");
        assert_eq!(format_datetime(-62_167_219_201), "-1-12-31T23:59:59Z");
        assert_eq!(format_datetime(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(format_datetime(253_402_300_800), "+10000-01-01T00:00:00Z");
        for t in [i64::MIN, i64::MAX, -1, 1 << 40] {
            let s = format_datetime(t);
            assert!(s.ends_with('Z') && s.len() >= 20, "{t}: {s}");
        }
    }
}
