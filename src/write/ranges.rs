//! Sets of byte ranges: what a staged file holds locally, and what was written since it last
//! matched the stored version.

use std::ops::Range;

/// Byte ranges, sorted and merged. Past [`Ranges::MAX`] ranges they collapse into one
/// covering them all, so a set that over-approximates stays bounded; callers use it where
/// "more" is safe (more bytes sent, never fewer).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ranges(Vec<Range<u64>>);

impl Ranges {
    /// Most ranges kept apart.
    pub const MAX: usize = 4096;

    /// Every byte of `r`.
    pub fn from_range(r: Range<u64>) -> Ranges {
        let mut s = Ranges::default();
        s.add(r);
        s
    }

    /// The ranges, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Range<u64>> {
        self.0.iter()
    }

    /// Whether no byte is in the set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Add `r`.
    pub fn add(&mut self, r: Range<u64>) {
        if r.is_empty() {
            return;
        }
        let mut merged = r;
        self.0.retain(|x| {
            let overlaps = x.start <= merged.end && merged.start <= x.end;
            if overlaps {
                merged = merged.start.min(x.start)..merged.end.max(x.end);
            }
            !overlaps
        });
        let at = self.0.partition_point(|x| x.start < merged.start);
        self.0.insert(at, merged);
        if self.0.len() > Self::MAX {
            if let (Some(first), Some(last)) = (self.0.first(), self.0.last()) {
                let all = first.start..last.end;
                self.0.clear();
                self.0.push(all);
            }
        }
    }

    /// Whether any byte of `r` is in the set.
    pub fn touches(&self, r: Range<u64>) -> bool {
        self.0.iter().any(|x| x.start < r.end && r.start < x.end)
    }

    /// Where the run of bytes in the set that holds `at` ends (`at` when `at` is not in it).
    pub fn end_of_run(&self, at: u64) -> u64 {
        self.0
            .iter()
            .find(|x| x.start <= at && at < x.end)
            .map_or(at, |x| x.end)
    }

    /// The parts of `r` not in the set, in order.
    pub fn gaps(&self, r: Range<u64>) -> Vec<Range<u64>> {
        let mut out = Vec::new();
        let mut at = r.start;
        for x in &self.0 {
            if x.end <= at {
                continue;
            }
            if x.start >= r.end {
                break;
            }
            if x.start > at {
                out.push(at..x.start);
            }
            at = at.max(x.end);
        }
        if at < r.end {
            out.push(at..r.end);
        }
        out
    }

    /// As text: `a-b` pairs separated by commas (for the journal).
    pub fn to_text(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|r| format!("{}-{}", r.start, r.end))
            .collect();
        parts.join(",")
    }

    /// From [`Ranges::to_text`]; `None` when it does not parse.
    pub fn parse(text: &str) -> Option<Ranges> {
        let mut s = Ranges::default();
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let (a, b) = part.split_once('-')?;
            let (a, b) = (a.parse().ok()?, b.parse().ok()?);
            if a > b {
                return None;
            }
            s.add(a..b);
        }
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_answer_gaps_and_stay_bounded() {
        let mut c = Ranges::default();
        c.add(10..20);
        c.add(30..40);
        assert_eq!(c.gaps(0..50), vec![0..10, 20..30, 40..50]);
        assert_eq!(c.gaps(12..18), Vec::<Range<u64>>::new());
        assert_eq!(c.gaps(15..35), vec![20..30]);
        c.add(15..32);
        assert_eq!(c.0, vec![10..40]);
        c.add(40..41);
        assert_eq!(c.0, vec![10..41], "adjacent ranges merge");
        assert_eq!(Ranges::parse(&c.to_text()), Some(c.clone()));
        assert_eq!(Ranges::parse("5-3"), None);
        assert_eq!(Ranges::parse(""), Some(Ranges::default()));
        for i in 0..(Ranges::MAX as u64 + 10) {
            c.add(1000 + i * 10..1000 + i * 10 + 1);
        }
        assert!(c.0.len() <= Ranges::MAX);
        assert!(c.touches(5000..5001) && c.touches(10..11) && !c.touches(0..10));
    }
}
