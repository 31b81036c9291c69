//! Event-time windows aligned to the Unix epoch: tumbling (slide = size) or hopping
//! (slide < size, so a record belongs to every window `[k·slide, k·slide + size)` that
//! contains it). Times are integer milliseconds; arithmetic saturates, so no timestamp,
//! however large, can overflow.

use std::time::Duration;

/// Window size and slide, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    size: i64,
    slide: i64,
}

impl WindowSpec {
    /// `slide` defaults to `size` (tumbling). Both must be whole milliseconds above 0, and
    /// the slide no longer than the size.
    pub fn new(size: Duration, slide: Option<Duration>) -> Result<Self, String> {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let size_ms = ms(size);
        let slide_ms = slide.map_or(size_ms, ms);
        if size_ms <= 0 || slide_ms <= 0 {
            return Err("window size and slide must be at least 1ms".into());
        }
        if slide_ms > size_ms {
            return Err(format!(
                "--slide ({slide_ms}ms) must not be longer than --window ({size_ms}ms)"
            ));
        }
        Ok(WindowSpec {
            size: size_ms,
            slide: slide_ms,
        })
    }

    pub fn size_ms(self) -> i64 {
        self.size
    }

    pub fn is_tumbling(self) -> bool {
        self.size == self.slide
    }

    /// Start of the latest window that contains `t`.
    pub fn last_start(self, t: i64) -> i64 {
        t.div_euclid(self.slide) * self.slide
    }

    /// End (exclusive) of the window starting at `start`.
    pub fn end(self, start: i64) -> i64 {
        start.saturating_add(self.size)
    }

    /// Every window start whose window contains `t`, latest first.
    pub fn starts(self, t: i64) -> impl Iterator<Item = i64> {
        let last = self.last_start(t);
        let spec = self;
        (0..)
            .map(move |k: i64| last.saturating_sub(k.saturating_mul(spec.slide)))
            .take_while(move |&start| spec.end(start) > t && start <= t)
            .take(usize::try_from(self.size / self.slide + 1).unwrap_or(usize::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(size_s: u64, slide_s: Option<u64>) -> WindowSpec {
        WindowSpec::new(
            Duration::from_secs(size_s),
            slide_s.map(Duration::from_secs),
        )
        .unwrap()
    }

    #[test]
    fn tumbling_has_one_window_per_record() {
        let s = spec(10, None);
        assert_eq!(s.starts(0).collect::<Vec<_>>(), vec![0]);
        assert_eq!(s.starts(9_999).collect::<Vec<_>>(), vec![0]);
        assert_eq!(s.starts(10_000).collect::<Vec<_>>(), vec![10_000]);
        assert_eq!(s.end(10_000), 20_000);
    }

    #[test]
    fn hopping_has_size_over_slide_windows() {
        let s = spec(10, Some(5));
        assert_eq!(s.starts(12_000).collect::<Vec<_>>(), vec![10_000, 5_000]);
        assert_eq!(s.starts(10_000).collect::<Vec<_>>(), vec![10_000, 5_000]);
        assert_eq!(s.starts(9_999).collect::<Vec<_>>(), vec![5_000, 0]);
    }

    #[test]
    fn uneven_hopping_windows_contain_the_record() {
        let s = spec(10, Some(3));
        for t in [0, 1, 2_999, 3_000, 29_999, 1_762_080_609_123] {
            let starts: Vec<i64> = s.starts(t).collect();
            let expected: Vec<i64> = (-4..=t / 3_000)
                .rev()
                .map(|k| k * 3_000)
                .filter(|st| *st <= t && st + 10_000 > t)
                .collect();
            assert_eq!(starts, expected, "t={t}");
        }
    }

    #[test]
    fn rejects_slide_longer_than_size_and_zero() {
        assert!(WindowSpec::new(Duration::from_secs(5), Some(Duration::from_secs(6))).is_err());
        assert!(WindowSpec::new(Duration::ZERO, None).is_err());
    }

    #[test]
    fn huge_timestamps_do_not_overflow() {
        use crate::record::MAX_EVENT_MILLIS;
        let s = spec(10, Some(5));
        // Nothing panics at the very edge; there simply is no window ending after it.
        assert_eq!(s.starts(i64::MAX).count(), 0);
        let starts: Vec<i64> = s.starts(MAX_EVENT_MILLIS).collect();
        assert_eq!(starts.len(), 2);
    }
}
