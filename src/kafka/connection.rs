//! Which Kafka cluster and which client settings, as chosen at start from the global flags
//! (-b, -X, --profile), and how that choice becomes the settings of every client.

use std::path::PathBuf;

use super::client::Kafka;
use super::profile;
use super::setting::Setting;

/// The cluster and client settings the command line chose, not yet resolved: a profile is
/// read only when a command connects.
#[derive(Debug, Clone)]
pub struct Connection {
    /// -b, STOCKSTREAM_BROKERS or the default.
    pub brokers: String,
    /// Whether -b was typed on the command line: it then wins over a profile's brokers.
    pub brokers_typed: bool,
    /// The -X settings, in the order given.
    pub settings: Vec<Setting>,
    /// --profile: a named cluster of the profiles file.
    pub profile: Option<String>,
    /// --config-file: the profiles file, when not the default one.
    pub profiles_file: Option<PathBuf>,
}

impl Connection {
    /// Whether the command line names a cluster, by a typed -b or a profile (the demo
    /// otherwise runs on its embedded one).
    pub fn names_a_cluster(&self) -> bool {
        self.brokers_typed || self.profile.is_some()
    }
}

impl Kafka {
    /// The cluster `connection` names: `-b` typed on the command line, else the
    /// profile's brokers, else STOCKSTREAM_BROKERS or the default; the profile's settings,
    /// then STOCKSTREAM_SASL_PASSWORD, then `-X` (a later one wins).
    pub fn new(connection: &Connection) -> anyhow::Result<Self> {
        let Some(name) = &connection.profile else {
            return Ok(Kafka::with_brokers(
                &connection.brokers,
                &connection.settings,
            ));
        };
        let path = profile::config_path(connection.profiles_file.as_deref())?;
        let resolved = profile::ConfigFile::load(&path)?
            .profile(name, &path)?
            .resolve(name)?;
        let brokers = match resolved.brokers {
            Some(b) if !connection.brokers_typed => b,
            _ => connection.brokers.clone(),
        };
        let mut given = resolved.settings;
        given.extend(connection.settings.iter().cloned());
        Ok(Kafka::with_brokers(&brokers, &given))
    }
}
