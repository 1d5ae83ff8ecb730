//! What the fuzz targets share (tests only): proptest on the stable toolchain, so every CI run
//! feeds each parser a bounded number of hostile inputs. `FUZZ_CASES` sets how many (default
//! 1000 per target); docs/fuzzing.md lists the targets.
//!
//! Inputs are arbitrary strings or bytes, and valid samples with random edits (characters put
//! in, taken out or replaced), which reach far deeper into a parser than random text does.

use proptest::prelude::*;
use proptest::test_runner::Config;

/// The proptest configuration of every fuzz target.
pub fn config() -> Config {
    let cases = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(1000);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Characters that parsers treat specially, mixed with anything.
fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::sample::select(vec![
            '=', ',', ':', '/', '\\', '\n', '\r', '\t', ' ', '"', '\'', '[', ']', '#', '%', '.',
            '\0', '\u{7f}', 'é', '\u{FF0F}', '{', '}', '@', '?', '&', '0', '9', '-',
        ]),
        1 => any::<char>(),
    ]
}

/// Arbitrary text, or one of `samples` with up to 8 random edits.
pub fn text(samples: &'static [&'static str]) -> impl Strategy<Value = String> {
    let edited = (
        prop::sample::select(samples.to_vec()),
        prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, hostile_char()), 0..8),
    )
        .prop_map(|(base, edits)| {
            let mut chars: Vec<char> = base.chars().collect();
            for (at, kind, c) in edits {
                let i = at.index(chars.len() + 1);
                match kind {
                    0 => chars.insert(i, c),
                    1 if i < chars.len() => {
                        chars.remove(i);
                    }
                    _ if i < chars.len() => chars[i] = c,
                    _ => chars.push(c),
                }
            }
            chars.into_iter().collect::<String>()
        });
    prop_oneof![
        1 => prop::collection::vec(hostile_char(), 0..64).prop_map(|v| v.into_iter().collect()),
        1 => any::<String>(),
        3 => edited,
    ]
}

/// Arbitrary bytes, or one of `samples` with up to 8 random byte edits.
pub fn bytes(samples: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let edited = (
        prop::sample::select(samples),
        prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 0..8),
    )
        .prop_map(|(mut b, edits)| {
            for (at, kind, x) in edits {
                let i = at.index(b.len() + 1);
                match kind {
                    0 => b.insert(i, x),
                    1 if i < b.len() => {
                        b.remove(i);
                    }
                    _ if i < b.len() => b[i] = x,
                    _ => b.push(x),
                }
            }
            b
        });
    prop_oneof![1 => prop::collection::vec(any::<u8>(), 0..256), 3 => edited]
}
