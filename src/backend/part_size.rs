//! Part sizes of multipart uploads, for every upload path (whole files, part copies and
//! streams), so a file of any size up to the store's object limit fits its part limit.

/// Smallest part a store takes (but the last), and the smallest base size.
pub const MIN_PART: u64 = 5 << 20;
/// Largest part S3 takes.
pub const MAX_PART: u64 = 5 << 30;
/// Most parts of one S3 upload (Azure takes 50,000 blocks; 10,000 fits both).
pub const MAX_PARTS: u64 = 10_000;

/// How the parts of one upload are sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartPlan {
    /// The configured part size (`upload_part_size`), at least [`MIN_PART`].
    pub base: u64,
    /// Most parts the store takes in one upload.
    pub max_parts: u64,
}

impl PartPlan {
    /// Parts of `base` bytes (raised to [`MIN_PART`]) on a store taking `max_parts`.
    pub fn new(base: u64, max_parts: u64) -> PartPlan {
        PartPlan {
            base: base.clamp(MIN_PART, MAX_PART),
            max_parts: max_parts.max(11),
        }
    }

    /// The one part size of an upload of `size` bytes known in advance: `base`, raised to
    /// whole MiB so the file fits in `max_parts` parts.
    pub fn whole(&self, size: u64) -> u64 {
        let fit = size.div_ceil(self.max_parts).div_ceil(1 << 20) << 20;
        self.base.max(fit).min(MAX_PART)
    }

    /// The size of part `index` (from 0) of a stream whose final size is unknown: `base`,
    /// doubled every `max_parts / 11` parts (up to [`MAX_PART`]), so the part limit holds
    /// at least `base × max_parts / 11 × 2047` bytes: 8.8 TiB with S3's limits and a 5 MiB
    /// base, more than its 5 TiB object limit. Small files keep small parts.
    pub fn stream(&self, index: u64) -> u64 {
        let step = self.max_parts / 11;
        let doublings = (index / step).min(20) as u32;
        (self.base << doublings).min(MAX_PART)
    }

    /// How many bytes a stream holds in `parts` parts.
    pub fn stream_capacity(&self, parts: u64) -> u64 {
        (0..parts).map(|i| self.stream(i)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_object_up_to_5_tib_fits_10000_parts_on_every_path() {
        const TIB: u64 = 1 << 40;
        for base in [MIN_PART, 8 << 20, 64 << 20] {
            let plan = PartPlan::new(base, MAX_PARTS);
            assert!(plan.stream_capacity(MAX_PARTS) >= 5 * TIB, "base {base}");
            for size in [0, base, 49 << 30, 60 << 30, TIB, 5 * TIB] {
                let part = plan.whole(size);
                assert!(
                    size.div_ceil(part) <= MAX_PARTS,
                    "{size} in parts of {part}"
                );
                assert!((MIN_PART..=MAX_PART).contains(&part));
            }
            assert_eq!(
                plan.whole(1 << 30),
                base,
                "small files keep the configured size"
            );
            assert_eq!(plan.stream(0), base);
            // The old fixed 5 MiB streams failed at part 10,001 (48.8 GiB).
            assert!(plan.stream_capacity(MAX_PARTS) > 60 << 30);
        }
        assert_eq!(PartPlan::new(1, MAX_PARTS).base, MIN_PART);
    }
}
