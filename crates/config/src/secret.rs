//! Secrets in configuration values: which keys hold one and how their
//! values appear in messages (never in clear), URLs with their password
//! hidden ([`redact_url`]), and values that name a secret kept elsewhere,
//! `${env:NAME}` (an environment variable) or `${file:PATH}` (a file's
//! content, trailing line breaks removed, for example a mounted Kubernetes
//! Secret), resolved where a configuration is read.

use crate::error::ConfigError;

/// Whether a value should be hidden in error messages.
pub(crate) fn is_sensitive(key: &str) -> bool {
    ["password", "secret", "jaas", "ssl.key.pem", "token"]
        .iter()
        .any(|s| key.contains(s))
}

/// The value as it may appear in an error message.
pub(crate) fn shown(key: &str, value: &str) -> String {
    if is_sensitive(key) {
        "<redacted>".to_string()
    } else {
        value.to_string()
    }
}

/// Whether the value of `key` must never be shown.
pub fn is_secret(key: &str) -> bool {
    is_sensitive(key) || key.contains("oauthbearer.config") || key.ends_with(".pem")
}

/// [`resolve`] with the value never shown in an error: a credential given
/// inline may be in it.
pub(crate) fn resolve_secret(key: &str, value: &str) -> Result<String, ConfigError> {
    resolve(key, value).map_err(|e| match e {
        ConfigError::InvalidValue { key, value, reason }
            if !value.starts_with("${env:") && !value.starts_with("${file:") =>
        {
            ConfigError::InvalidValue {
                key,
                value: "<redacted>".into(),
                reason,
            }
        }
        e => e,
    })
}

/// `${env:NAME}` and `${file:PATH}` in `value`, resolved.
pub(crate) fn resolve(key: &str, value: &str) -> Result<String, ConfigError> {
    let shown = |v: &str| {
        if is_secret(key) {
            "<redacted>".to_string()
        } else {
            v.to_string()
        }
    };
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('}') else {
            return Err(ConfigError::invalid(key, shown(value), "an unclosed `${`"));
        };
        let reference = &rest[start + 2..start + len];
        let resolved = if let Some(name) = reference.strip_prefix("env:") {
            std::env::var(name).map_err(|_| {
                ConfigError::invalid(
                    key,
                    format!("${{env:{name}}}"),
                    format!("the environment variable `{name}` is not set"),
                )
            })?
        } else if let Some(path) = reference.strip_prefix("file:") {
            std::fs::read_to_string(path)
                .map_err(|e| ConfigError::invalid(key, format!("${{file:{path}}}"), e.to_string()))?
                .trim_end_matches(['\n', '\r'])
                .to_string()
        } else {
            return Err(ConfigError::invalid(
                key,
                shown(value),
                format!("`${{{reference}}}`: expected `${{env:NAME}}` or `${{file:PATH}}`"),
            ));
        };
        out.push_str(&resolved);
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `url` with the password of its user part replaced by `<redacted>`.
///
/// ```
/// use switchyard_config::redact_url;
/// assert_eq!(redact_url("redis://u:pw@h:6379/0"), "redis://u:<redacted>@h:6379/0");
/// assert_eq!(redact_url("redis://:pw@h"), "redis://:<redacted>@h");
/// assert_eq!(redact_url("http://h/a@b"), "http://h/a@b");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let authority_end = url[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| scheme_end + i);
    let authority = &url[scheme_end..authority_end];
    match authority.rfind('@') {
        Some(at) => match authority[..at].find(':') {
            Some(colon) => format!(
                "{}{}:<redacted>{}",
                &url[..scheme_end],
                &authority[..colon],
                &url[scheme_end + at..]
            ),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}
