//! The policy catalog (SPEC §2, §3.9): every clause of the preface on
//! 指定管理者 (P), the 要綱 (Y) and the 基準 (K) with its Japanese text as the
//! policy writes it, an English gist, and the controls that serve it; and
//! the policy's versions from its 付則.
//!
//! The Japanese text is exact by construction: the catalog is parsed once
//! from `policy/edogawa-security-policy.ja.txt`, a byte-identical copy of
//! the ward's file (a test compares it with the shared original when that is
//! present). Gists and controls are reviewable data files next to it:
//! `catalog/gists.toml` and `catalog/controls.toml`.
//!
//! Coverage rule (tested): a clause is covered when a control names it, when
//! a control names one of its ancestors (a control on `K16.2` serves
//! `K16.2.1`–`K16.2.3`), or when it has parts and every part is covered.

mod parse;

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use time::Date;

use crate::clause::{ClauseId, Document};
use crate::wareki;

/// The policy text, byte for byte as the ward publishes it.
pub const POLICY_TEXT: &str = include_str!("../../policy/edogawa-security-policy.ja.txt");
/// One English line per clause and note, keyed by clause id.
const GISTS: &str = include_str!("../../catalog/gists.toml");
/// The clause → control mapping.
const CONTROLS: &str = include_str!("../../catalog/controls.toml");

/// The automatic checks a `checked` control may name (their implementation
/// lives in the server's compliance module; the ids are fixed).
pub const CHECK_IDS: [&str; 11] = [
    "k17.3.departed-accounts",
    "k17.4.password-expired",
    "k17.2.shared-unjustified",
    "k18.operator-limit",
    "k3.2.1.secret-without-rules",
    "k3.2.1.review-overdue",
    "k16.2.2.ledger-unverified",
    "k30.2.viewer-limit",
    "k10.chain-overdue",
    "k9.training-unattended",
    "k32.1.inspection-unfiled",
];

static CATALOG: LazyLock<Catalog> = LazyLock::new(Catalog::build);

/// The catalog, parsed on first use.
pub fn catalog() -> &'static Catalog {
    &CATALOG
}

/// A clause of the policy: an article (条), paragraph (項), item (号) or
/// sub-item (ア…).
#[derive(Debug, Clone, Serialize)]
pub struct Clause {
    pub id: ClauseId,
    /// The clause one level up; `None` for an article.
    pub parent: Option<ClauseId>,
    /// The article heading as written, e.g. 「目的等」 (articles only).
    pub heading_ja: Option<String>,
    /// The clause's own words, without its number and without its parts.
    /// An article's own words are its first paragraph. A sentence cut by a
    /// page break in the source is joined back.
    pub text_ja: String,
    /// One English line saying what the clause asks.
    pub gist_en: String,
    /// The 1-based lines of the policy file the words come from.
    pub source_lines: Vec<usize>,
}

impl Clause {
    /// The Japanese citation, e.g. 「基準第17条第3項」.
    pub fn citation_ja(&self) -> String {
        self.id.ja()
    }
}

/// A passage of the policy that is not a clause: the preface's title,
/// preamble and footnotes, chapter 1, 別表第一 and 第二.
#[derive(Debug, Clone, Serialize)]
pub struct Note {
    /// e.g. `P.preamble`, `P.note1`, `chapter1`, `Y.appendix1`.
    pub key: String,
    pub title_ja: String,
    pub text_ja: String,
    pub gist_en: String,
    pub source_lines: Vec<usize>,
}

/// One 付則 (supplementary provision) as written.
#[derive(Debug, Clone)]
pub struct SupplementaryProvision {
    pub document: Document,
    /// 1 for the document's first 付則.
    pub ordinal: usize,
    pub text_ja: String,
    pub effective: Option<Date>,
}

/// How a control serves its clauses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlKind {
    /// The software makes it so (code path and test named).
    Enforced,
    /// Computed from live data by an automatic check.
    Checked,
    /// A person attests, with evidence (a self-inspection question).
    Procedural,
    /// Software cannot serve it, with the reason.
    NotApplicable,
}

impl ControlKind {
    pub const ALL: [ControlKind; 4] = [
        ControlKind::Enforced,
        ControlKind::Checked,
        ControlKind::Procedural,
        ControlKind::NotApplicable,
    ];

    /// The string used in data, URLs and the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            ControlKind::Enforced => "enforced",
            ControlKind::Checked => "checked",
            ControlKind::Procedural => "procedural",
            ControlKind::NotApplicable => "not_applicable",
        }
    }
}

/// What serves one or more clauses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Control {
    /// e.g. `ctl.k17.3.departed-accounts`.
    pub id: String,
    pub kind: ControlKind,
    pub clauses: Vec<ClauseId>,
    pub title_ja: String,
    pub title_en: String,
    /// Checked: one of [`CHECK_IDS`].
    #[serde(default)]
    pub check: Option<String>,
    /// Enforced: the code path, `crates/…/file.rs` (+ `::fn_name`).
    #[serde(default)]
    pub code: Option<String>,
    /// Enforced: the test, `crates/…/tests/file.rs::fn_name`.
    #[serde(default)]
    pub test: Option<String>,
    /// Procedural: the self-inspection question.
    #[serde(default)]
    pub question_ja: Option<String>,
    #[serde(default)]
    pub question_en: Option<String>,
    /// Procedural: the evidence the answer should carry.
    #[serde(default)]
    pub evidence_ja: Option<String>,
    #[serde(default)]
    pub evidence_en: Option<String>,
    /// NotApplicable: why software cannot serve it (Japanese).
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub reason_en: Option<String>,
}

/// A version of the policy: the state in force from `effective`.
#[derive(Debug, Clone)]
pub struct PolicyVersion {
    /// e.g. 「平成19年4月1日施行」.
    pub label: String,
    pub effective: Date,
    /// What the 付則 say, e.g. 「要綱 付則: この要綱は、…から施行する。」
    pub note_ja: String,
    /// The documents amended on that date.
    pub documents: Vec<Document>,
}

/// The whole catalog.
#[derive(Debug)]
pub struct Catalog {
    /// In policy order: preface, 要綱, 基準; each clause before its parts.
    pub clauses: Vec<Clause>,
    pub controls: Vec<Control>,
    /// Oldest first.
    pub versions: Vec<PolicyVersion>,
    pub notes: Vec<Note>,
    pub provisions: Vec<SupplementaryProvision>,
    /// What went wrong reading the text or the data files (empty when all is
    /// well; a test insists on it).
    pub problems: Vec<String>,
    index: HashMap<ClauseId, usize>,
}

#[derive(Deserialize)]
struct ControlFile {
    control: Vec<Control>,
}

impl Catalog {
    fn build() -> Catalog {
        let parsed = parse::parse(POLICY_TEXT);
        let mut problems = parsed.problems;
        let gists: BTreeMap<String, String> = toml::from_str(GISTS).unwrap_or_else(|e| {
            problems.push(format!("catalog/gists.toml: {e}"));
            BTreeMap::new()
        });
        let gist = |key: &str| gists.get(key).cloned().unwrap_or_default();
        let clauses: Vec<Clause> = parsed
            .clauses
            .into_iter()
            .map(|c| Clause {
                parent: c.id.parent(),
                gist_en: gist(&c.id.to_string()),
                id: c.id,
                heading_ja: c.heading,
                text_ja: c.text,
                source_lines: c.lines,
            })
            .collect();
        let notes = parsed
            .notes
            .into_iter()
            .map(|n| Note {
                gist_en: gist(&n.key),
                key: n.key,
                title_ja: n.title,
                text_ja: n.text,
                source_lines: n.lines,
            })
            .collect();
        let controls = match toml::from_str::<ControlFile>(CONTROLS) {
            Ok(f) => f.control,
            Err(e) => {
                problems.push(format!("catalog/controls.toml: {e}"));
                Vec::new()
            }
        };
        let provisions: Vec<SupplementaryProvision> = parsed
            .provisions
            .into_iter()
            .map(|p| SupplementaryProvision {
                document: p.document,
                ordinal: p.ordinal,
                text_ja: p.text,
                effective: p.effective,
            })
            .collect();
        let versions = versions_from(&provisions);
        let mut index = HashMap::new();
        for (i, c) in clauses.iter().enumerate() {
            if index.insert(c.id, i).is_some() {
                problems.push(format!("clause {} appears twice", c.id));
            }
        }
        Catalog {
            clauses,
            controls,
            versions,
            notes,
            provisions,
            problems,
            index,
        }
    }

    /// The clause with this id.
    pub fn clause(&self, id: &ClauseId) -> Option<&Clause> {
        self.index.get(id).and_then(|&i| self.clauses.get(i))
    }

    /// The controls that name this clause.
    pub fn controls_for<'a>(&'a self, id: &'a ClauseId) -> impl Iterator<Item = &'a Control> + 'a {
        self.controls.iter().filter(move |c| c.clauses.contains(id))
    }

    /// The controls that name this clause or one of its ancestors.
    pub fn controls_covering<'a>(
        &'a self,
        id: &'a ClauseId,
    ) -> impl Iterator<Item = &'a Control> + 'a {
        self.controls
            .iter()
            .filter(move |c| c.clauses.iter().any(|cl| id.is_within(cl)))
    }

    /// The controls a person attests: the source of self-inspection questions.
    pub fn procedural_controls(&self) -> impl Iterator<Item = &Control> {
        self.controls
            .iter()
            .filter(|c| c.kind == ControlKind::Procedural)
    }

    /// The control with this id.
    pub fn control(&self, id: &str) -> Option<&Control> {
        self.controls.iter().find(|c| c.id == id)
    }

    /// The version in force on `date`: the latest whose effective date is on
    /// or before it. `None` before the policy first took effect.
    pub fn version_on(&self, date: Date) -> Option<&PolicyVersion> {
        self.versions.iter().rev().find(|v| v.effective <= date)
    }

    /// The direct parts of a clause, in order.
    pub fn children<'a>(&'a self, id: &'a ClauseId) -> impl Iterator<Item = &'a Clause> + 'a {
        self.clauses
            .iter()
            .filter(move |c| c.parent.as_ref() == Some(id))
    }

    /// The clauses of one document, in order.
    pub fn document(&self, document: Document) -> impl Iterator<Item = &Clause> {
        self.clauses
            .iter()
            .filter(move |c| c.id.document() == document)
    }

    /// Whether a clause is covered by the rule in the module docs.
    pub fn is_covered(&self, id: &ClauseId) -> bool {
        if self.controls_covering(id).next().is_some() {
            return true;
        }
        let mut parts = self.children(id).peekable();
        parts.peek().is_some() && parts.all(|c| self.is_covered(&c.id))
    }

    /// Clauses no control covers (empty when the mapping is complete).
    pub fn uncovered(&self) -> Vec<ClauseId> {
        self.clauses
            .iter()
            .map(|c| c.id)
            .filter(|id| !self.is_covered(id))
            .collect()
    }

    /// How many controls of each kind.
    pub fn counts_by_kind(&self) -> Vec<(ControlKind, usize)> {
        ControlKind::ALL
            .iter()
            .map(|k| (*k, self.controls.iter().filter(|c| c.kind == *k).count()))
            .collect()
    }
}

/// One version per effective date found in the 付則, oldest first.
fn versions_from(provisions: &[SupplementaryProvision]) -> Vec<PolicyVersion> {
    let mut by_date: BTreeMap<Date, Vec<&SupplementaryProvision>> = BTreeMap::new();
    for p in provisions {
        if let Some(d) = p.effective {
            by_date.entry(d).or_default().push(p);
        }
    }
    by_date
        .into_iter()
        .map(|(effective, ps)| {
            let note_ja = ps
                .iter()
                .map(|p| {
                    format!(
                        "{} 付則（第{}）: {}",
                        p.document.name_ja(),
                        p.ordinal,
                        p.text_ja.replace('\n', " ")
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            let mut documents: Vec<Document> = ps.iter().map(|p| p.document).collect();
            documents.sort();
            documents.dedup();
            PolicyVersion {
                label: format!("{}施行", wareki::format_date_ja(effective)),
                effective,
                note_ja,
                documents,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
