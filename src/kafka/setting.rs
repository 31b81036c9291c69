//! `-X key=value`: one librdkafka setting from the command line. A secret's value is never
//! printed (not in logs, errors, `-v` dumps or `{:?}`), and it need not be on the command
//! line at all: `-X sasl.password=@FILE` reads it from a file, and STOCKSTREAM_SASL_PASSWORD
//! gives `sasl.password` from the environment.

use std::fmt;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaConfRes;

/// The environment variable that gives `sasl.password` (an `-X sasl.password=…` wins).
pub const PASSWORD_ENV: &str = "STOCKSTREAM_SASL_PASSWORD";

/// One librdkafka setting.
#[derive(Clone, PartialEq, Eq)]
pub struct Setting {
    key: String,
    value: String,
}

impl Setting {
    pub fn new(key: &str, value: &str) -> Self {
        Setting {
            key: key.to_string(),
            value: value.to_string(),
        }
    }

    /// Parses `key=value`; for a secret, `key=@path` reads the value from the file at `path`
    /// (one trailing newline dropped), and `key=@@…` is the literal value `@…`.
    pub fn parse(text: &str) -> Result<Setting, String> {
        let Some((key, value)) = text.split_once('=') else {
            return Err(if looks_secret(text) {
                "expected KEY=VALUE (the text is not shown: it may hold a secret)".to_string()
            } else {
                format!("expected KEY=VALUE, got `{text}`")
            });
        };
        let key = key.trim();
        if key.is_empty() {
            return Err("expected KEY=VALUE, but the key is empty".to_string());
        }
        match value.strip_prefix('@') {
            Some(literal) if holds_secret_material(key) && literal.starts_with('@') => {
                Ok(Setting::new(key, literal))
            }
            Some(path) if holds_secret_material(key) => {
                Ok(Setting::new(key, &read_secret(key, path)?))
            }
            _ => Ok(Setting::new(key, value)),
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether librdkafka takes this setting: a key it knows, with a value of the right type
    /// and range. Asked of a throw-away configuration, so nothing is contacted; the error is
    /// librdkafka's own words, without a secret value.
    pub fn check(&self) -> Result<(), String> {
        match ClientConfig::new()
            .set(&self.key, &self.value)
            .create_native_config()
        {
            Ok(_) => Ok(()),
            Err(KafkaError::ClientConfig(_, description, key, value)) => {
                Err(without_secret(&key, &value, description.trim()))
            }
            Err(other) => Err(other.to_string()),
        }
    }

    /// The value as it may be shown: `[redacted]` for a secret.
    pub fn shown(&self) -> &str {
        if is_secret(&self.key) {
            "[redacted]"
        } else {
            &self.value
        }
    }
}

impl fmt::Debug for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.shown())
    }
}

/// Parses `-X` for clap, and has librdkafka check the setting, so that an unknown key or a
/// bad value is a usage error before any broker is contacted. Its own error text, because
/// clap's would quote the raw value, which may hold a secret.
#[derive(Clone, Copy, Debug)]
pub struct SettingParser;

impl clap::builder::TypedValueParser for SettingParser {
    type Value = Setting;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Setting, clap::Error> {
        // `what` follows "invalid -X setting": its text, or why it has none.
        let invalid = |what: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid -X setting{what}\n"),
            )
            .with_cmd(cmd)
        };
        let text = value
            .to_str()
            .ok_or_else(|| invalid(": not valid UTF-8".to_string()))?;
        let setting = Setting::parse(text).map_err(|why| invalid(format!(": {why}")))?;
        setting.check().map_err(|why| {
            invalid(format!(
                " `{setting:?}`: librdkafka refuses it: {why}\n  hint: {}",
                super::library::settings_hint()
            ))
        })?;
        Ok(setting)
    }
}

/// Whether a setting's value must never be shown. Redaction is the default: a value may be
/// shown only when librdkafka knows the key and its name speaks of nothing secret. Every
/// other key — a misspelling such as `sasl.pasword` above all, the usual way a secret lands
/// under an unknown key — is treated as holding a secret.
pub fn is_secret(key: &str) -> bool {
    mentions_secret(key) || !librdkafka_knows(key)
}

/// Whether a key's name speaks of passwords, keys, tokens or credentials.
fn mentions_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "pass",
        "secret",
        "token",
        "key",
        "jaas",
        "cred",
        "sasl.oauthbearer",
        "private",
        "pem",
        "pw",
    ]
    .iter()
    .any(|s| key.contains(s))
}

/// Whether librdkafka has a setting of this name (asked of a throw-away configuration, with
/// an empty value; the answer is kept per name).
fn librdkafka_knows(key: &str) -> bool {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static KNOWN: OnceLock<Mutex<HashMap<String, bool>>> = OnceLock::new();
    let known = KNOWN.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(answer) = known.lock().ok().and_then(|k| k.get(key).copied()) {
        return answer;
    }
    let answer = ask_librdkafka(key);
    if let Ok(mut k) = known.lock() {
        k.insert(key.to_string(), answer);
    }
    answer
}

fn ask_librdkafka(key: &str) -> bool {
    // An empty value may be invalid for a known key; only an unknown key is not known.
    matches!(
        ClientConfig::new().set(key, "").create_native_config(),
        Ok(_)
            | Err(KafkaError::ClientConfig(
                RDKafkaConfRes::RD_KAFKA_CONF_INVALID,
                ..
            ))
    )
}

/// Whether a setting's value is itself secret material (a password, a private key, a token,
/// OAuth or JAAS credentials), rather than, say, the path of a key file: such a value may
/// not be written in a profile.
pub fn holds_secret_material(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "ssl.key.pem",
        "ssl_key",
        "sasl.jaas",
        "token",
        "sasl.oauthbearer.config",
        "passphrase",
        "private",
        "credential",
    ]
    .iter()
    .any(|s| key.contains(s))
}

/// Whether text mentions a secret key (or a misspelled one), so that nothing may echo it.
fn looks_secret(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    is_secret(&text)
        || ["pas", "word", "pw", "secr", "key", "cred", "token"]
            .iter()
            .any(|s| text.contains(s))
}

/// `text` (librdkafka's words about the setting `key`) without `value` when the setting
/// looks like a secret.
pub fn without_secret(key: &str, value: &str, text: &str) -> String {
    if (is_secret(key) || looks_secret(key)) && !value.is_empty() {
        text.replace(value, "[redacted]")
    } else {
        text.to_string()
    }
}

/// `text` without the value of any secret among `settings` (librdkafka's words about a
/// whole configuration).
pub fn without_secrets<'a>(
    settings: impl IntoIterator<Item = (&'a str, &'a str)>,
    text: &str,
) -> String {
    settings
        .into_iter()
        .fold(text.to_string(), |text, (key, value)| {
            without_secret(key, value, &text)
        })
}

/// Reads a secret from a file. Errors do not name the file: if the @ was meant as the
/// first character of the secret itself, its name is the rest of the secret.
pub fn read_secret(key: &str, path: &str) -> Result<String, String> {
    const LITERAL: &str = "(a value that starts with @ is written @@…)";
    if path.is_empty() {
        return Err(format!("`{key}=@` needs a file name after the @ {LITERAL}"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!("could not read {key} from the file named after the @: {e} {LITERAL}")
    })?;
    let value = text
        .strip_suffix('\n')
        .map_or(text.as_str(), |t| t.strip_suffix('\r').unwrap_or(t));
    if value.is_empty() {
        return Err(format!("the file named after the @ for {key} is empty"));
    }
    Ok(value.to_string())
}

/// The settings a client gets: `sasl.password` from `env_password` (the value of
/// STOCKSTREAM_SASL_PASSWORD) unless `-X sasl.password` is given, then the `-X` settings in
/// order, so that a later one wins.
pub fn with_env_password(env_password: Option<String>, given: &[Setting]) -> Vec<Setting> {
    let mut all = Vec::with_capacity(given.len() + 1);
    if let Some(password) = env_password.filter(|p| !p.is_empty()) {
        if !given.iter().any(|s| s.key == "sasl.password") {
            all.push(Setting::new("sasl.password", &password));
        }
    }
    all.extend(given.iter().cloned());
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_setting_keeps_everything_after_the_first_equals_sign() {
        let s = Setting::parse("client.id=a=b").unwrap();
        assert_eq!((s.key(), s.value()), ("client.id", "a=b"));
        assert_eq!(format!("{s:?}"), "client.id=a=b");
    }

    #[test]
    fn librdkafka_checks_each_setting_in_its_own_words() {
        assert_eq!(Setting::new("linger.ms", "20").check(), Ok(()));
        assert_eq!(
            Setting::new("security.protocol", "SASL_SSL").check(),
            Ok(())
        );
        let err = Setting::new("linger.ms", "abc").check().unwrap_err();
        assert!(err.contains("Invalid value"), "{err}");
        let err = Setting::new("linger.ms", "-5").check().unwrap_err();
        assert!(err.contains("outside allowed range"), "{err}");
        let err = Setting::new("nonsense", "1").check().unwrap_err();
        assert_eq!(err, r#"No such configuration property: "nonsense""#);
    }

    #[test]
    fn a_refused_secret_is_not_quoted() {
        // librdkafka quotes an invalid value; a secret's is replaced.
        let err = Setting::new("compression.codec", "zzz")
            .check()
            .unwrap_err();
        assert!(err.contains(r#""zzz""#), "{err}");
        let text = r#"`ssl.key.password` hunter2 does not open the key"#;
        let settings = [("ssl.key.password", "hunter2"), ("linger.ms", "5")];
        assert_eq!(
            without_secrets(settings, text),
            "`ssl.key.password` [redacted] does not open the key"
        );
    }

    #[test]
    fn a_secret_is_never_shown() {
        let s = Setting::parse("sasl.password=hunter2").unwrap();
        assert_eq!(s.value(), "hunter2");
        assert_eq!(format!("{s:?}"), "sasl.password=[redacted]");
        assert_eq!(s.shown(), "[redacted]");
        let s = Setting::parse("ssl.key.password=x1").unwrap();
        assert!(!format!("{s:?}").contains("x1"));
    }

    #[test]
    fn a_malformed_secret_is_not_echoed_in_the_error() {
        let err = Setting::parse("sasl.passwordhunter2").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        let err = Setting::parse("linger.ms").unwrap_err();
        assert!(err.contains("linger.ms"), "{err}");
        assert!(Setting::parse("=x").is_err());
    }

    #[test]
    fn a_secret_can_come_from_a_file() {
        let dir = std::env::temp_dir().join(format!("stockstream-setting-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("password");
        std::fs::write(&file, "s3cret\n").unwrap();
        let s = Setting::parse(&format!("sasl.password=@{}", file.display())).unwrap();
        assert_eq!(s.value(), "s3cret");
        std::fs::write(&file, "s3cret\r\n").unwrap();
        let s = Setting::parse(&format!("sasl.password=@{}", file.display())).unwrap();
        assert_eq!(s.value(), "s3cret");
        std::fs::write(&file, "").unwrap();
        let err = Setting::parse(&format!("sasl.password=@{}", file.display())).unwrap_err();
        assert!(err.contains("empty"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);

        let err = Setting::parse("sasl.password=@/nonexistent/stockstream").unwrap_err();
        assert!(
            !err.contains("nonexistent") && err.contains("sasl.password"),
            "{err}"
        );
        // @@ is a literal @.
        let s = Setting::parse("sasl.password=@@b3cret").unwrap();
        assert_eq!(s.value(), "@b3cret");
        // Only secrets are read from files; other values keep their @.
        let s = Setting::parse("client.id=@home").unwrap();
        assert_eq!(s.value(), "@home");
    }

    #[test]
    fn librdkafka_s_words_about_a_secret_setting_lose_its_value() {
        let text = r#"Invalid value "hunter2" for configuration property "sasl.pasword""#;
        assert!(!without_secret("sasl.pasword", "hunter2", text).contains("hunter2"));
        let text = r#"Invalid value "abc" for configuration property "linger.ms""#;
        assert_eq!(without_secret("linger.ms", "abc", text), text);
        for key in [
            "sasl.oauthbearer.assertion.private.key.passphrase",
            "sasl.oauthbearer.assertion.private.key.pem",
            "sasl.oauthbearer.client.secret",
            "ssl.keystore.password",
        ] {
            assert!(is_secret(key), "{key}");
        }
    }

    #[test]
    fn a_misspelled_or_unknown_key_is_treated_as_secret() {
        for key in [
            "sasl.pasword",
            "ssl.key.pasword",
            "sasl.passwrd",
            "sasl.pssword",
            "ssl.keystore.pasword",
            "nonsense",
            "sasl.usernam",
            "linger.m",
        ] {
            assert!(is_secret(key), "{key}");
            let s = Setting::new(key, "hunter2");
            assert_eq!(format!("{s:?}"), format!("{key}=[redacted]"));
        }
    }

    #[test]
    fn a_known_harmless_key_is_shown() {
        for key in [
            "linger.ms",
            "bootstrap.servers",
            "sasl.username",
            "sasl.mechanism",
            "security.protocol",
            "acks",
            "debug",
            "group.instance.id",
        ] {
            assert!(!is_secret(key), "{key}");
        }
        // Known to librdkafka, but named like a secret: hidden.
        for key in [
            "ssl.key.location",
            "ssl.ca.pem",
            "sasl.oauthbearer.client.id",
        ] {
            assert!(is_secret(key), "{key}");
        }
    }

    proptest::proptest! {
        /// Any one-letter edit of a secret key's name, and any name librdkafka does not know,
        /// hides its value.
        #[test]
        fn one_letter_edits_of_secret_keys_stay_hidden(
            which in 0usize..6,
            at in 0usize..40,
            letter in proptest::char::range('a', 'z'),
            edit in 0u8..4,
        ) {
            let keys = [
                "sasl.password",
                "ssl.key.password",
                "ssl.keystore.password",
                "sasl.oauthbearer.client.secret",
                "ssl.key.pem",
                "sasl.jaas.config",
            ];
            let mut chars: Vec<char> = keys[which].chars().collect();
            let at = at % chars.len();
            match edit {
                0 => { chars.remove(at); }
                1 => chars[at] = letter,
                2 => chars.insert(at, letter),
                _ => if at + 1 < chars.len() { chars.swap(at, at + 1) },
            }
            let key: String = chars.into_iter().collect();
            proptest::prop_assert!(is_secret(&key), "{}", key);
            let shown = format!("{:?}", Setting::new(&key, "S3CRETVALUE"));
            proptest::prop_assert!(!shown.contains("S3CRETVALUE"), "{}", shown);
        }
    }

    #[test]
    fn the_environment_password_is_used_unless_x_gives_one() {
        let given = vec![Setting::new("sasl.username", "alice")];
        let all = with_env_password(Some("envpw".into()), &given);
        assert_eq!(
            all,
            vec![
                Setting::new("sasl.password", "envpw"),
                Setting::new("sasl.username", "alice")
            ]
        );
        let given = vec![Setting::new("sasl.password", "flag")];
        assert_eq!(with_env_password(Some("envpw".into()), &given), given);
        assert_eq!(with_env_password(Some(String::new()), &[]), vec![]);
        assert_eq!(with_env_password(None, &[]), vec![]);
    }
}
