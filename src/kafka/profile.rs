//! Named clusters: `--profile NAME` reads the brokers and librdkafka settings of a cluster
//! from a TOML file, so that a secured or cloud cluster is one flag instead of five `-X`.
//! Secrets are never written in the file: a secret setting's value is a reference,
//! `env:VAR` or `file:PATH`, resolved when the profile is used; an inline secret is refused.
//!
//! ```toml
//! [profiles.prod]
//! brokers = "kafka-1:9093,kafka-2:9093"
//! [profiles.prod.settings]
//! "security.protocol" = "SASL_SSL"
//! "sasl.mechanism" = "SCRAM-SHA-512"
//! "sasl.username" = "alice"
//! "sasl.password" = "env:KAFKA_PASSWORD"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _};
use serde::Deserialize;

use super::setting::{holds_secret_material, read_secret, Setting};
use crate::exit::Failure;

/// The file's shape: `[profiles.NAME]` tables.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// One named cluster.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Bootstrap servers, comma-separated.
    pub brokers: Option<String>,
    /// librdkafka settings; a secret one only as `env:VAR` or `file:PATH`.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

/// What a profile gives a client, its references resolved.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub brokers: Option<String>,
    pub settings: Vec<Setting>,
}

/// Where the file is: `explicit` (--config-file / STOCKSTREAM_CONFIG), else
/// `$XDG_CONFIG_HOME/stockstream/config.toml`, else `~/.config/stockstream/config.toml`.
pub fn config_path(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })
        .ok_or_else(|| {
            anyhow!("neither XDG_CONFIG_HOME nor HOME is set: name the profiles file with --config-file")
        })?;
    Ok(base.join("stockstream").join("config.toml"))
}

impl ConfigFile {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> anyhow::Result<ConfigFile> {
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "reading the profiles file {} (write one, or name another with --config-file)",
                path.display()
            )
        })?;
        let file: ConfigFile = toml::from_str(&text)
            .with_context(|| format!("reading the profiles file {}", path.display()))?;
        for (name, profile) in &file.profiles {
            profile.check(name)?;
        }
        Ok(file)
    }

    pub fn profile(&self, name: &str, path: &Path) -> anyhow::Result<&Profile> {
        self.profiles.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.profiles.keys().map(String::as_str).collect();
            anyhow!(
                "no profile `{name}` in {} (profiles there: {})",
                path.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )
        })
    }
}

/// A value's reference, if it is one.
enum Reference<'a> {
    Env(&'a str),
    File(&'a str),
}

fn reference(value: &str) -> Option<Reference<'_>> {
    if let Some(var) = value.strip_prefix("env:") {
        return Some(Reference::Env(var));
    }
    value.strip_prefix("file:").map(Reference::File)
}

impl Profile {
    /// Refuses a secret written inline (the file would hold it in clear text).
    fn check(&self, name: &str) -> anyhow::Result<()> {
        for (key, value) in &self.settings {
            if holds_secret_material(key) && reference(value).is_none() {
                bail!(
                    "profile `{name}` gives the secret setting `{key}` inline: secrets are given only by reference, \
                     e.g. `\"{key}\" = \"env:KAFKA_PASSWORD\"` or `\"{key}\" = \"file:/path/to/secret\"`"
                );
            }
        }
        Ok(())
    }

    /// The brokers and settings, each reference replaced by what it names.
    pub fn resolve(&self, name: &str) -> anyhow::Result<Resolved> {
        self.check(name)?;
        let mut settings = Vec::with_capacity(self.settings.len());
        for (key, value) in &self.settings {
            let value = match reference(value) {
                Some(Reference::Env(var)) => std::env::var(var)
                    .ok()
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| {
                        anyhow!(
                            "profile `{name}`: `{key}` comes from the environment variable {var}, which is not set"
                        )
                    })?,
                Some(Reference::File(path)) => read_secret(key, path)
                    .map_err(|e| anyhow!("profile `{name}`: {e} ({path})"))?,
                None => value.clone(),
            };
            let setting = Setting::new(key, &value);
            // Refused now, as a refused -X is, rather than when the first client is made.
            setting.check().map_err(|cause| Failure::Setting {
                what: format!("profile `{name}` sets `{setting:?}`, which librdkafka refuses"),
                cause,
                hint: super::library::settings_hint(),
            })?;
            settings.push(setting);
        }
        Ok(Resolved {
            brokers: self.brokers.clone(),
            settings,
        })
    }
}

/// A setting's value as `profile show` prints it: a reference as written (it names where
/// the secret is, not the secret), any other value as a `-X` value would be shown.
pub fn shown_value(key: &str, value: &str) -> String {
    if reference(value).is_some() {
        value.to_string()
    } else {
        Setting::new(key, value).shown().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<ConfigFile> {
        let file: ConfigFile = toml::from_str(text)?;
        for (name, p) in &file.profiles {
            p.check(name)?;
        }
        Ok(file)
    }

    #[test]
    fn a_profile_gives_brokers_and_settings() {
        let file = parse(
            r#"
            [profiles.local]
            brokers = "127.0.0.1:9093"
            [profiles.local.settings]
            "security.protocol" = "SASL_SSL"
            "sasl.username" = "alice"
            "#,
        )
        .unwrap();
        let r = file.profiles["local"].resolve("local").unwrap();
        assert_eq!(r.brokers.as_deref(), Some("127.0.0.1:9093"));
        assert_eq!(
            r.settings,
            vec![
                Setting::new("sasl.username", "alice"),
                Setting::new("security.protocol", "SASL_SSL")
            ]
        );
    }

    #[test]
    fn an_inline_secret_is_refused_with_the_fix() {
        for key in ["sasl.password", "ssl.key.password", "sasl.jaas.config"] {
            let err = parse(&format!("[profiles.p.settings]\n\"{key}\" = \"hunter2\"\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("inline") && err.contains("env:"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn secrets_come_from_the_environment_or_a_file() {
        let dir = std::env::temp_dir().join(format!("stockstream-profile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "from-file\n").unwrap();
        // A variable only this test sets.
        let var = format!("STOCKSTREAM_PROFILE_TEST_{}", std::process::id());
        std::env::set_var(&var, "from-env");
        let text = format!(
            "[profiles.p.settings]\n\"sasl.password\" = \"env:{var}\"\n\"ssl.key.password\" = \"file:{}\"\n",
            file.display()
        );
        let r = parse(&text).unwrap().profiles["p"].resolve("p").unwrap();
        let value = |k: &str| {
            r.settings
                .iter()
                .find(|s| s.key() == k)
                .unwrap()
                .value()
                .to_string()
        };
        assert_eq!(value("sasl.password"), "from-env");
        assert_eq!(value("ssl.key.password"), "from-file");
        std::env::remove_var(&var);
        let err = parse(&text).unwrap().profiles["p"]
            .resolve("p")
            .unwrap_err();
        assert!(err.to_string().contains(&var), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unknown_field_is_an_error() {
        assert!(parse("[profiles.p]\nbroker = \"x\"\n").is_err());
    }
}
