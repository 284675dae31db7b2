//! Message catalogs (ja default, en). User-facing text lives in the TOML
//! catalogs, not in code; keys are stable codes such as `password.too_short`.

use std::collections::HashMap;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "ja" => Some(Lang::Ja),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

tokio::task_local! {
    /// The language of the request being served.
    pub static LANG: Lang;
}

/// The current request's language (Japanese outside a request).
pub fn current() -> Lang {
    LANG.try_with(|l| *l).unwrap_or(Lang::Ja)
}

struct Catalogs {
    ja: HashMap<String, String>,
    en: HashMap<String, String>,
}

fn load(sources: &[&str]) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for src in sources {
        // The catalogs are compiled in and checked by a test; a broken one
        // would fail that test, so a parse error here only skips the file.
        if let Ok(table) = src.parse::<toml::Table>() {
            flatten("", &table, &mut map);
        }
    }
    map
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut HashMap<String, String>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::String(s) => {
                out.insert(key, s.clone());
            }
            toml::Value::Table(t) => flatten(&key, t, out),
            other => {
                out.insert(key, other.to_string());
            }
        }
    }
}

const JA_SOURCES: &[&str] = &[
    include_str!("../../i18n/ja.toml"),
    include_str!("../../i18n/ja-pages.toml"),
    include_str!("../../i18n/ja-ledger.toml"),
    include_str!("../../i18n/ja-evidence.toml"),
    include_str!("../../i18n/ja-assets.toml"),
    include_str!("../../i18n/ja-cards.toml"),
    include_str!("../../i18n/ja-incidents.toml"),
    include_str!("../../i18n/ja-inspections.toml"),
    include_str!("../../i18n/ja-compliance.toml"),
    mamori_policy::password::MESSAGES_JA,
    mamori_personnel_csv::MESSAGES_JA,
];
const EN_SOURCES: &[&str] = &[
    include_str!("../../i18n/en.toml"),
    include_str!("../../i18n/en-pages.toml"),
    include_str!("../../i18n/en-ledger.toml"),
    include_str!("../../i18n/en-evidence.toml"),
    include_str!("../../i18n/en-assets.toml"),
    include_str!("../../i18n/en-cards.toml"),
    include_str!("../../i18n/en-incidents.toml"),
    include_str!("../../i18n/en-inspections.toml"),
    include_str!("../../i18n/en-compliance.toml"),
    mamori_policy::password::MESSAGES_EN,
    mamori_personnel_csv::MESSAGES_EN,
];

fn catalogs() -> &'static Catalogs {
    static C: OnceLock<Catalogs> = OnceLock::new();
    C.get_or_init(|| Catalogs {
        ja: load(JA_SOURCES),
        en: load(EN_SOURCES),
    })
}

/// The message for `key`, with `{name}` placeholders filled from `params`.
/// A missing English text falls back to Japanese, a missing key to the key.
pub fn t(lang: Lang, key: &str, params: &[(&str, String)]) -> String {
    let c = catalogs();
    let text = match lang {
        Lang::Ja => c.ja.get(key),
        Lang::En => c.en.get(key).or_else(|| c.ja.get(key)),
    };
    let mut s = text.cloned().unwrap_or_else(|| key.to_string());
    for (name, value) in params {
        s = s.replace(&format!("{{{name}}}"), value);
    }
    s
}

/// Every key of the Japanese catalog (for the completeness test).
pub fn keys_ja() -> Vec<String> {
    catalogs().ja.keys().cloned().collect()
}

pub fn has_key(lang: Lang, key: &str) -> bool {
    let c = catalogs();
    match lang {
        Lang::Ja => c.ja.contains_key(key),
        Lang::En => c.en.contains_key(key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogs_parse_and_english_covers_japanese() {
        for src in JA_SOURCES.iter().chain(EN_SOURCES) {
            src.parse::<toml::Table>()
                .expect("catalog must be valid TOML");
        }
        let missing: Vec<_> = keys_ja()
            .into_iter()
            .filter(|k| !has_key(Lang::En, k))
            .collect();
        assert!(missing.is_empty(), "keys without English text: {missing:?}");
    }
}
