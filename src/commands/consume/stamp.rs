//! Record timestamps as RFC 3339 UTC with milliseconds, always the same width
//! (`2026-01-01T09:30:00.125Z`), written without a date computation per record: records come
//! in runs of the same second, so the second's text is kept and only the milliseconds change.

/// Writes Unix-ms timestamps; remembers the last second it wrote.
#[derive(Debug, Default)]
pub struct Stamp {
    second: Option<i64>,
    /// `YYYY-MM-DDTHH:MM:SS` of `second`.
    text: Vec<u8>,
}

impl Stamp {
    /// Appends `ms` as `2026-01-01T09:30:00.125Z`; a time `time` cannot show (beyond the
    /// year 9999) as its number of ms.
    pub fn write(&mut self, out: &mut Vec<u8>, ms: i64) {
        let (second, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
        if self.second != Some(second) {
            self.text.clear();
            let Ok(t) = time::OffsetDateTime::from_unix_timestamp(second) else {
                out.extend_from_slice(ms.to_string().as_bytes());
                return;
            };
            let (y, mo, d) = (t.year(), u8::from(t.month()), t.day());
            let (h, mi, s) = (t.hour(), t.minute(), t.second());
            self.text.extend_from_slice(
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}").as_bytes(),
            );
            self.second = Some(second);
        }
        out.extend_from_slice(&self.text);
        let milli = u8::try_from(milli / 100).unwrap_or(0);
        let rest = ms.rem_euclid(100);
        out.extend_from_slice(&[
            b'.',
            b'0' + milli,
            b'0' + u8::try_from(rest / 10).unwrap_or(0),
            b'0' + u8::try_from(rest % 10).unwrap_or(0),
            b'Z',
        ]);
    }

    /// `ms` as text.
    pub fn text(&mut self, ms: i64) -> String {
        let mut out = Vec::with_capacity(24);
        self.write(&mut out, ms);
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_are_always_shown_and_seconds_reused_correctly() {
        let mut s = Stamp::default();
        assert_eq!(s.text(1_767_225_600_000), "2026-01-01T00:00:00.000Z");
        assert_eq!(s.text(1_767_225_600_125), "2026-01-01T00:00:00.125Z");
        assert_eq!(s.text(1_767_225_600_999), "2026-01-01T00:00:00.999Z");
        assert_eq!(s.text(1_767_225_601_007), "2026-01-01T00:00:01.007Z");
        assert_eq!(s.text(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(s.text(1_762_080_609_123), "2025-11-02T10:50:09.123Z");
    }

    #[test]
    fn agrees_with_the_bar_s_rfc3339_for_any_ms() {
        let mut s = Stamp::default();
        for ms in [1, 999, 1000, 86_399_999, 951_782_400_000, 4_102_444_799_999] {
            let ours = s.text(ms);
            let theirs = crate::aggregate::bar::rfc3339(ms);
            let theirs = if theirs.contains('.') {
                theirs
            } else {
                theirs.replace('Z', ".000Z")
            };
            assert_eq!(ours, theirs, "{ms}");
        }
    }
}
