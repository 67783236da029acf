//! The `grpc-timeout` header: how much time a caller gives the service it calls.
//!
//! The format is gRPC's (`TimeoutValue TimeoutUnit`, see gRPC's "HTTP/2 protocol" document):
//! 1 to 8 ASCII digits, then one unit letter — `H` hours, `M` minutes, `S` seconds,
//! `m` milliseconds, `u` microseconds, `n` nanoseconds. No sign, no space, nothing else.
//! tonic, grpc-go and grpc-java all read and write it, so a deadline set here crosses into
//! services written with any of them.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use ctx_tower::grpc_timeout;
//!
//! let header = grpc_timeout::format(Duration::from_millis(1500));
//! assert_eq!(header, "1500000u");
//! assert_eq!(grpc_timeout::parse(&header), Some(Duration::from_millis(1500)));
//! ```

use std::time::Duration;

use http::HeaderValue;

/// The header's name, `grpc-timeout`.
///
/// # Examples
///
/// ```
/// assert_eq!(ctx_tower::grpc_timeout::HEADER, "grpc-timeout");
/// ```
pub const HEADER: http::HeaderName = http::HeaderName::from_static("grpc-timeout");

/// At most this many digits (gRPC's limit).
const MAX_DIGITS: usize = 8;

/// The largest value that fits in [`MAX_DIGITS`] digits.
const MAX_VALUE: u64 = 99_999_999;

/// Reads a `grpc-timeout` value: 1 to 8 ASCII digits and one unit of `H M S m u n`.
/// Anything else — empty, 9 digits or more, another unit, a sign, a space, a byte that is not
/// ASCII — is `None`, so a caller can ignore the header rather than fail the request.
///
/// # Panics
///
/// Never: the largest value, `99999999H`, is about 11,400 years and fits a `Duration`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use http::HeaderValue;
/// use ctx_tower::grpc_timeout::parse;
///
/// assert_eq!(parse(&HeaderValue::from_static("250m")), Some(Duration::from_millis(250)));
/// assert_eq!(parse(&HeaderValue::from_static("3S")), Some(Duration::from_secs(3)));
/// assert_eq!(parse(&HeaderValue::from_static("123456789m")), None); // 9 digits
/// assert_eq!(parse(&HeaderValue::from_static("5 S")), None);
/// ```
pub fn parse(value: &HeaderValue) -> Option<Duration> {
    let (unit, digits) = value.as_bytes().split_last()?;
    if digits.is_empty() || digits.len() > MAX_DIGITS {
        return None;
    }
    let mut n: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        // At most 8 digits: never overflows.
        n = n * 10 + u64::from(d - b'0');
    }
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Writes `d` as a `grpc-timeout` value: at most 8 digits in the finest unit that fits,
/// rounded down, so the value read back is never more than `d` and less than one unit short.
/// `Duration::ZERO` is `0n`; anything of 99,999,999 hours or more saturates to `99999999H`.
///
/// Rounding down is deliberate: a callee that believes it has more time than its caller
/// would keep working after the caller has given up.
///
/// # Panics
///
/// Never.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ctx_tower::grpc_timeout::format;
///
/// assert_eq!(format(Duration::ZERO), "0n");
/// assert_eq!(format(Duration::from_nanos(99_999_999)), "99999999n");
/// assert_eq!(format(Duration::from_millis(100)), "100000u");
/// assert_eq!(format(Duration::from_secs(3600)), "3600000m");
/// assert_eq!(format(Duration::MAX), "99999999H");
/// ```
pub fn format(d: Duration) -> HeaderValue {
    let nanos = d.as_nanos();
    let secs = d.as_secs();
    let (n, unit) = if nanos <= u128::from(MAX_VALUE) {
        (nanos as u64, b'n') // fits: checked just above
    } else if d.as_micros() <= u128::from(MAX_VALUE) {
        (d.as_micros() as u64, b'u')
    } else if d.as_millis() <= u128::from(MAX_VALUE) {
        (d.as_millis() as u64, b'm')
    } else if secs <= MAX_VALUE {
        (secs, b'S')
    } else if secs / 60 <= MAX_VALUE {
        (secs / 60, b'M')
    } else {
        ((secs / 3600).min(MAX_VALUE), b'H')
    };
    // Digits and unit into a stack buffer: no `String` on the per-request path.
    let mut buf = [0u8; MAX_DIGITS + 1];
    let mut start = MAX_DIGITS;
    let mut rest = n;
    loop {
        start -= 1;
        buf[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    buf[MAX_DIGITS] = unit;
    match HeaderValue::from_bytes(&buf[start..]) {
        Ok(v) => v,
        // ASCII digits and a letter are always a valid header value.
        Err(_) => unreachable!("ctx-tower: internal error: invalid grpc-timeout bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[u8]) -> Option<Duration> {
        parse(&HeaderValue::from_bytes(s).expect("a header value"))
    }

    #[test]
    fn every_unit_is_read() {
        assert_eq!(p(b"2H"), Some(Duration::from_secs(7200)));
        assert_eq!(p(b"2M"), Some(Duration::from_secs(120)));
        assert_eq!(p(b"2S"), Some(Duration::from_secs(2)));
        assert_eq!(p(b"2m"), Some(Duration::from_millis(2)));
        assert_eq!(p(b"2u"), Some(Duration::from_micros(2)));
        assert_eq!(p(b"2n"), Some(Duration::from_nanos(2)));
        assert_eq!(p(b"00000000n"), Some(Duration::ZERO));
    }

    #[test]
    fn hostile_values_are_none() {
        for bad in [
            &b""[..],
            b"S",
            b"1",
            b"123456789S",
            b"99999999999999999999H",
            b"1x",
            b"1s",
            b"1h",
            b"+1S",
            b"-1S",
            b" 1S",
            b"1S ",
            b"1 S",
            b"1.5S",
            b"\xff1S",
            b"1\xc3\xa9",
            b"\xd9\xa1S", // an Arabic-Indic digit one
        ] {
            assert_eq!(p(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn the_largest_value_saturates_without_panicking() {
        assert_eq!(p(b"99999999H"), Some(Duration::from_secs(99_999_999 * 3600)));
        assert_eq!(format(Duration::MAX), "99999999H");
        assert_eq!(format(Duration::from_secs(99_999_999 * 3600)), "99999999H");
        assert_eq!(format(Duration::from_secs(100_000_000 * 3600)), "99999999H");
    }

    #[test]
    fn format_picks_the_finest_unit_that_fits() {
        assert_eq!(format(Duration::from_nanos(1)), "1n");
        assert_eq!(format(Duration::from_nanos(100_000_000)), "100000u");
        assert_eq!(format(Duration::from_nanos(100_000_999)), "100000u");
        assert_eq!(format(Duration::from_secs(99)), "99000000u");
        assert_eq!(format(Duration::from_secs(100)), "100000m");
        assert_eq!(format(Duration::from_secs(100_000)), "100000S");
        assert_eq!(format(Duration::from_secs(100_000_000)), "1666666M");
        assert_eq!(format(Duration::from_secs(6_000_000_000)), "1666666H");
    }

    proptest::proptest! {
        #[test]
        fn format_then_parse_never_grows_and_loses_less_than_one_unit(secs in proptest::prelude::any::<u64>(), nanos in 0u32..1_000_000_000) {
            let d = Duration::new(secs, nanos);
            let header = format(d);
            let back = parse(&header).expect("format writes what parse reads");
            proptest::prop_assert!(back <= d, "{d:?} -> {header:?} -> {back:?}");
            let unit = match header.as_bytes().last() {
                Some(b'n') => Duration::from_nanos(1),
                Some(b'u') => Duration::from_micros(1),
                Some(b'm') => Duration::from_millis(1),
                Some(b'S') => Duration::from_secs(1),
                Some(b'M') => Duration::from_secs(60),
                Some(b'H') => Duration::from_secs(3600),
                other => panic!("unit {other:?}"),
            };
            let saturated = header == "99999999H";
            proptest::prop_assert!(saturated || d - back < unit, "{d:?} -> {header:?} -> {back:?}");
            proptest::prop_assert!(header.len() <= MAX_DIGITS + 1);
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12)) {
            if let Ok(v) = HeaderValue::from_bytes(&bytes) {
                let _ = parse(&v);
            }
        }
    }
}
