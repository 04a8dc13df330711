//! Severity levels. OpenTelemetry's severity numbers (1..=24, four per level) are the
//! stored form; the level name is derived from the number.

use std::fmt;

/// The six OpenTelemetry severity ranges plus "unspecified" (number 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    Unspecified,
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Fatal,
}

impl Level {
    /// The level of an OpenTelemetry severity number (0 or out of range: unspecified).
    pub fn from_number(n: u8) -> Self {
        match n {
            1..=4 => Self::Trace,
            5..=8 => Self::Debug,
            9..=12 => Self::Info,
            13..=16 => Self::Warn,
            17..=20 => Self::Error,
            21..=24 => Self::Fatal,
            _ => Self::Unspecified,
        }
    }

    /// The first severity number of the level's range (TRACE=1, DEBUG=5, INFO=9, WARN=13,
    /// ERROR=17, FATAL=21; unspecified=0).
    pub fn number(self) -> u8 {
        match self {
            Self::Unspecified => 0,
            Self::Trace => 1,
            Self::Debug => 5,
            Self::Info => 9,
            Self::Warn => 13,
            Self::Error => 17,
            Self::Fatal => 21,
        }
    }

    /// Recognises the level names and abbreviations in common use (case-insensitive):
    /// syslog's (`emerg`, `crit`, `err`, `notice`...), log4j's, Python's, Go's.
    pub fn parse(s: &str) -> Option<Self> {
        let l = s.trim().to_ascii_lowercase();
        Some(match l.as_str() {
            "trace" | "trc" | "finest" | "verbose" => Self::Trace,
            "debug" | "dbg" | "fine" | "finer" | "d" => Self::Debug,
            "info" | "inf" | "information" | "informational" | "notice" | "i" => Self::Info,
            "warn" | "warning" | "wrn" | "w" => Self::Warn,
            "error" | "err" | "eror" | "severe" | "e" => Self::Error,
            "fatal" | "critical" | "crit" | "alert" | "emerg" | "emergency" | "panic" | "f" => {
                Self::Fatal
            }
            _ => return None,
        })
    }

    /// Lowercase name: `trace`, `debug`, `info`, `warn`, `error`, `fatal`, or `""` for
    /// unspecified.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "",
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
            Self::Fatal => "fatal",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names_agree() {
        for l in [
            Level::Trace,
            Level::Debug,
            Level::Info,
            Level::Warn,
            Level::Error,
            Level::Fatal,
        ] {
            assert_eq!(Level::from_number(l.number()), l);
            assert_eq!(Level::from_number(l.number() + 3), l);
            assert_eq!(Level::parse(l.as_str()), Some(l));
        }
        assert_eq!(Level::parse("WARNING"), Some(Level::Warn));
        assert_eq!(Level::parse("nope"), None);
        assert_eq!(Level::from_number(0), Level::Unspecified);
    }
}
