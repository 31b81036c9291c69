//! Which librdkafka this binary carries and what it was built with, for `--version`: a
//! bug report or a missing feature (SASL mechanism, compression codec) starts there.

use rdkafka::config::ClientConfig;

/// "librdkafka 2.10.0" and, on the next line, its builtin features.
pub fn describe() -> String {
    let (_, version) = rdkafka::util::get_rdkafka_version();
    // The defaults of an empty configuration hold the features librdkafka was built with.
    let features = ClientConfig::new()
        .create_native_config()
        .and_then(|native| native.get("builtin.features"))
        .unwrap_or_else(|e| format!("unknown ({e})"));
    format!("librdkafka {version}\nfeatures: {features}")
}

/// Where librdkafka's settings are listed, for this very version: what to read when one is
/// refused.
pub fn settings_hint() -> String {
    let (_, version) = rdkafka::util::get_rdkafka_version();
    format!(
        "librdkafka {version} takes the settings listed at \
         https://github.com/confluentinc/librdkafka/blob/v{version}/CONFIGURATION.md"
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_the_version_and_the_tls_feature() {
        let text = super::describe();
        assert!(text.starts_with("librdkafka 2."), "{text}");
        assert!(text.contains("ssl"), "{text}");
    }
}
