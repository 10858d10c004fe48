//! What every daemon's configuration shares: TOML files read with serde, errors that name
//! the key (and, from toml, the line), and the checks of common keys.

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key or a value of the wrong type (the message names the
    /// key and the line).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// toml's message.
        message: String,
    },
    /// A value of the right type but out of range.
    #[error("{key}: {message}")]
    Invalid {
        /// The key, dotted.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// Parses TOML into a configuration type; `path` names the source in errors (toml's
/// messages name the key and the line).
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    path: &str,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.into(),
        message: e.to_string(),
    })
}

/// Reads and parses a TOML file.
pub fn load_toml<T: serde::de::DeserializeOwned>(path: &str) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.into(),
        source,
    })?;
    parse_toml(&text, path)
}

/// Checks a `log_level` value.
pub fn check_log_level(value: &str) -> Result<(), ConfigError> {
    match crate::startup::log_level(value) {
        Some(_) => Ok(()),
        None => Err(invalid(
            "log_level",
            format!("{value:?}: use {}", crate::startup::LOG_LEVELS),
        )),
    }
}

/// A [`ConfigError::Invalid`] for `key`.
pub fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// The symmetric keys of the keys file at `path` (none without one), in `format`; an
/// error names `key` and the file's line.
pub fn read_keys_file(
    path: Option<&str>,
    format: tempora_ntp::keys::KeysFormat,
    key: &str,
) -> Result<tempora_ntp::keys::SymmetricKeys, ConfigError> {
    let Some(path) = path else {
        return Ok(tempora_ntp::keys::SymmetricKeys::new());
    };
    let text = std::fs::read_to_string(path).map_err(|e| invalid(key, format!("{path}: {e}")))?;
    tempora_ntp::keys::SymmetricKeys::parse(&text, format)
        .map_err(|e| invalid(key, format!("{path}: {e}")))
}

/// Reads and checks a leap-seconds list (`leap_file`), naming the key and the line of a
/// malformed one; `None` without a path.
pub fn read_leap_file(
    path: Option<&std::path::Path>,
    key: &str,
) -> Result<Option<tempora_clock_discipline::LeapSecondsList>, ConfigError> {
    let Some(path) = path else {
        return Ok(None);
    };
    let bytes =
        std::fs::read(path).map_err(|e| invalid(key, format!("{}: {e}", path.display())))?;
    tempora_clock_discipline::LeapSecondsList::parse(&bytes)
        .map(Some)
        .map_err(|e| invalid(key, format!("{}: {e}", path.display())))
}

/// A daemon's configuration file: TOML read with serde (unknown keys and wrong types
/// refused with the key and the line), then checked for what serde cannot see.
pub trait ConfigFile: serde::de::DeserializeOwned {
    /// Checks values serde cannot (ranges, combinations), naming the key.
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }

    /// Reads and checks a TOML file.
    fn from_file(path: &str) -> Result<Self, ConfigError> {
        let config: Self = load_toml(path)?;
        config.validate()?;
        Ok(config)
    }

    /// Parses and checks TOML text.
    fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Self = parse_toml(text, "config")?;
        config.validate()?;
        Ok(config)
    }
}
