//! The TOML config file: the same names as the `-o` options, as top-level keys.
//!
//! ```toml
//! allow_other = true
//! uid = 1000
//! endpoint = "http://127.0.0.1:9000"
//! attr_timeout = "30s"
//! ```

use super::options::apply_option;
use super::MountConfig;
use std::path::Path;

/// Apply every key of the TOML file at `path` to `cfg`. Errors name the file and the line.
pub fn load_file(cfg: &mut MountConfig, path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    apply_toml(cfg, &text).map_err(|(line, msg)| match line {
        Some(l) => format!("{}:{l}: {msg}", path.display()),
        None => format!("{}: {msg}", path.display()),
    })
}

/// The line (1-based) where `key` is assigned in `text`, for error messages.
fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

pub(crate) fn apply_toml(cfg: &mut MountConfig, text: &str) -> Result<(), (Option<usize>, String)> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        (line, format!("invalid TOML: {}", e.message()))
    })?;
    for (key, value) in table {
        let line = line_of(text, &key);
        let as_str = match &value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err((
                    line,
                    format!(
                        "key {key:?}: expected a string, number or boolean, got {}",
                        other.type_str()
                    ),
                ));
            }
        };
        apply_option(cfg, &key, Some(&as_str)).map_err(|e| (line, e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_keys_and_names_lines_in_errors() {
        let mut c = MountConfig::default();
        apply_toml(
            &mut c,
            "allow_other = true\nuid = 7\nattr_timeout = \"3s\"\n",
        )
        .unwrap();
        assert!(c.allow_other);
        assert_eq!(c.uid, Some(7));
        let (line, msg) = apply_toml(&mut c, "ro = true\n\nbogus = 1\n").unwrap_err();
        assert_eq!(line, Some(3));
        assert!(msg.contains("unknown mount option \"bogus\""), "{msg}");
        let (line, msg) = apply_toml(&mut c, "ro = true\nuid = = 3\n").unwrap_err();
        assert_eq!(line, Some(2), "{msg}");
        let (line, _) = apply_toml(&mut c, "\n\numask = \"999\"\n").unwrap_err();
        assert_eq!(line, Some(3));
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzz::config())]

        /// Fuzz target: the TOML config file; every input gives a config or a message.
        #[test]
        fn fuzz_config_files(text in crate::fuzz::text(&[
            "allow_other = true\nuid = 1000\nendpoint = \"http://127.0.0.1:9000\"\nattr_timeout = \"30s\"\n",
            "[table]\nx = 1\ncache_size = \"10G\"\nretries = 3\n",
            "ro = false\nmax_memory = 1.5\nlog_file = '/var/log/x'\n",
        ])) {
            let mut c = MountConfig::default();
            if let Err((Some(line), _)) = apply_toml(&mut c, &text) {
                proptest::prop_assert!(line >= 1 && line <= text.lines().count().max(1));
            }
        }
    }
}
