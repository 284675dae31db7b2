//! The catalog as the UI and the API show it, the policy's versions (the
//! 付則 in `mamori_policy::catalog` plus those reviews added), and recording
//! a review (Y10, K34) with its ledger record in the same transaction.

use super::store::{self, NewReview, ReviewRow, VersionRow};
use crate::app::AppState;
use crate::auth::Actor;
use crate::web::error::{AppError, FieldError};
use mamori_policy::catalog::{self, Clause, Control, ControlKind, PolicyVersion};
use mamori_policy::clause::{ClauseId, Document};
use mamori_policy::{wareki, Role};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::Date;

/// Longest review summary.
pub const MAX_SUMMARY: usize = 4000;
/// Longest version label.
pub const MAX_LABEL: usize = 100;

/// A version of the policy: from a 付則 or added by a review.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VersionView {
    pub label: String,
    /// `YYYY-MM-DD`.
    pub effective: String,
    /// The effective date in 和暦, e.g. 平成19年4月1日.
    pub effective_ja: String,
    pub note_ja: String,
    /// Letters of the documents amended: `Y`, `K`, `P`.
    pub documents: Vec<String>,
    /// `fusoku` (the policy's own 付則) or `review` (recorded in Mamori).
    pub source: String,
    pub review_id: Option<i64>,
}

fn version_from_policy(v: &PolicyVersion) -> VersionView {
    VersionView {
        label: v.label.clone(),
        effective: crate::clock::date_str(v.effective),
        effective_ja: wareki::format_date_ja(v.effective),
        note_ja: v.note_ja.clone(),
        documents: v.documents.iter().map(|d| d.letter().to_string()).collect(),
        source: "fusoku".into(),
        review_id: None,
    }
}

fn version_from_row(v: &VersionRow) -> VersionView {
    VersionView {
        label: v.label.clone(),
        effective_ja: crate::clock::parse_date_str(&v.effective_on)
            .map(wareki::format_date_ja)
            .unwrap_or_default(),
        effective: v.effective_on.clone(),
        note_ja: v.note.clone(),
        documents: v.documents.chars().map(String::from).collect(),
        source: "review".into(),
        review_id: Some(v.review_id),
    }
}

/// Every version, oldest first: the 付則 and those reviews added.
pub async fn versions(state: &AppState) -> Result<Vec<VersionView>, AppError> {
    let mut conn = state.db().pool().acquire().await?;
    let rows = store::versions(&mut conn).await?;
    let mut all: Vec<VersionView> = catalog::catalog()
        .versions
        .iter()
        .map(version_from_policy)
        .chain(rows.iter().map(version_from_row))
        .collect();
    // Stored dates are YYYY-MM-DD, so text order is date order; a stable
    // sort keeps the 付則 before a review's version on the same day.
    all.sort_by(|a, b| a.effective.cmp(&b.effective));
    Ok(all)
}

/// The version in force on `date` (the last one effective on or before it).
pub fn version_on(versions: &[VersionView], date: Date) -> Option<&VersionView> {
    let d = crate::clock::date_str(date);
    versions.iter().rev().find(|v| v.effective <= d)
}

/// Reads a date as people write it (`2026-11-28`, `令和8年11月28日`,
/// `R8.11.28`); `field` names the input in the error.
pub fn parse_date(field: &str, value: &str) -> Result<Date, FieldError> {
    wareki::parse_date(value.trim())
        .ok_or_else(|| FieldError::new(field, "catalog.date_invalid", &[("value", value.into())]))
}

/// The optional `date` query parameter.
pub fn date_param(raw: Option<&str>) -> Result<Option<Date>, AppError> {
    match query_value(raw, "date") {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => parse_date("date", &v)
            .map(Some)
            .map_err(|e| AppError::Invalid(vec![e])),
    }
}

/// One parameter of a raw query string (the last if repeated).
pub fn query_value(raw: Option<&str>, name: &str) -> Option<String> {
    let raw = raw.unwrap_or("");
    // A query that does not decode (e.g. `date=%ZZ`) is read undecoded, so
    // the bad value is refused by name instead of being ignored.
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw).unwrap_or_else(|_| {
        raw.split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    });
    pairs
        .into_iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// A control as shown next to a clause.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ControlRef {
    pub id: String,
    /// `enforced`, `checked`, `procedural` or `not_applicable`.
    pub kind: String,
    pub title_ja: String,
    pub title_en: String,
}

/// A control with everything the data file says.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ControlView {
    pub id: String,
    pub kind: String,
    pub clauses: Vec<String>,
    pub title_ja: String,
    pub title_en: String,
    pub check: Option<String>,
    pub code: Option<String>,
    pub test: Option<String>,
    pub question_ja: Option<String>,
    pub question_en: Option<String>,
    pub evidence_ja: Option<String>,
    pub evidence_en: Option<String>,
    pub reason: Option<String>,
    pub reason_en: Option<String>,
}

fn control_ref(c: &Control) -> ControlRef {
    ControlRef {
        id: c.id.clone(),
        kind: c.kind.as_str().into(),
        title_ja: c.title_ja.clone(),
        title_en: c.title_en.clone(),
    }
}

pub fn control_view(c: &Control) -> ControlView {
    ControlView {
        id: c.id.clone(),
        kind: c.kind.as_str().into(),
        clauses: c.clauses.iter().map(ToString::to_string).collect(),
        title_ja: c.title_ja.clone(),
        title_en: c.title_en.clone(),
        check: c.check.clone(),
        code: c.code.clone(),
        test: c.test.clone(),
        question_ja: c.question_ja.clone(),
        question_en: c.question_en.clone(),
        evidence_ja: c.evidence_ja.clone(),
        evidence_en: c.evidence_en.clone(),
        reason: c.reason.clone(),
        reason_en: c.reason_en.clone(),
    }
}

/// A clause with its controls.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClauseView {
    /// e.g. `K17.3`.
    pub id: String,
    /// e.g. 基準第17条第3項.
    pub citation_ja: String,
    pub parent: Option<String>,
    /// 0 article, 1 paragraph, 2 item, 3 sub-item.
    pub depth: u8,
    pub heading_ja: Option<String>,
    pub text_ja: String,
    pub gist_en: String,
    /// The controls that name this clause.
    pub controls: Vec<ControlRef>,
    /// How many controls name a clause above this one (they serve it too).
    pub inherited_controls: usize,
    /// Covered by the catalog's rule (own, inherited, or all parts covered).
    pub covered: bool,
}

fn depth(id: &ClauseId) -> u8 {
    if !id.sub_items().is_empty() {
        3
    } else if id.item().is_some() {
        2
    } else if id.paragraph().is_some() {
        1
    } else {
        0
    }
}

pub fn clause_view(c: &Clause) -> ClauseView {
    let cat = catalog::catalog();
    let own: Vec<ControlRef> = cat.controls_for(&c.id).map(control_ref).collect();
    let inherited = cat.controls_covering(&c.id).count() - own.len();
    ClauseView {
        id: c.id.to_string(),
        citation_ja: c.id.ja(),
        parent: c.parent.map(|p| p.to_string()),
        depth: depth(&c.id),
        heading_ja: c.heading_ja.clone(),
        text_ja: c.text_ja.clone(),
        gist_en: c.gist_en.clone(),
        controls: own,
        inherited_controls: inherited,
        covered: cat.is_covered(&c.id),
    }
}

/// An article with its paragraphs, items and sub-items in order.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ArticleView {
    pub article: ClauseView,
    pub parts: Vec<ClauseView>,
}

/// One document of the policy.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DocumentView {
    /// `P`, `Y` or `K`.
    pub letter: String,
    pub name_ja: String,
    pub name_en: String,
    pub articles: Vec<ArticleView>,
}

/// A passage that is not a clause (preface preamble and notes, chapter 1, 別表).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NoteView {
    pub key: String,
    pub title_ja: String,
    pub text_ja: String,
    pub gist_en: String,
}

/// The catalog on a date.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CatalogView {
    /// The date asked for (`YYYY-MM-DD`), or today.
    pub date: String,
    /// The version in force on that date; null before the policy first took effect.
    pub version: Option<VersionView>,
    /// Versions that took effect after the date: the text shown is the
    /// current one, and these say what changed since.
    pub later_versions: Vec<VersionView>,
    pub clause_count: usize,
    pub documents: Vec<DocumentView>,
    pub notes: Vec<NoteView>,
}

fn document_name_en(d: Document) -> &'static str {
    match d {
        Document::Preface => "Scope for designated managers (preface)",
        Document::BasicPolicy => "Basic policy (要綱)",
        Document::Standards => "Standards (基準)",
    }
}

fn document_full_ja(d: Document) -> &'static str {
    match d {
        Document::Preface => "適用対象（指定管理者）",
        Document::BasicPolicy => "江戸川区情報管理安全対策要綱",
        Document::Standards => "江戸川区情報管理安全対策基準",
    }
}

/// The whole catalog grouped by document and article.
pub fn documents() -> Vec<DocumentView> {
    let cat = catalog::catalog();
    [
        Document::Preface,
        Document::BasicPolicy,
        Document::Standards,
    ]
    .into_iter()
    .map(|d| {
        let mut articles: Vec<ArticleView> = Vec::new();
        for c in cat.document(d) {
            if c.parent.is_none() {
                articles.push(ArticleView {
                    article: clause_view(c),
                    parts: Vec::new(),
                });
            } else if let Some(a) = articles.last_mut() {
                a.parts.push(clause_view(c));
            }
        }
        DocumentView {
            letter: d.letter().to_string(),
            name_ja: document_full_ja(d).into(),
            name_en: document_name_en(d).into(),
            articles,
        }
    })
    .collect()
}

pub async fn catalog_on(state: &AppState, date: Option<Date>) -> Result<CatalogView, AppError> {
    let date = date.unwrap_or_else(|| state.clock().today());
    let versions = versions(state).await?;
    let version = version_on(&versions, date).cloned();
    let d = crate::clock::date_str(date);
    let later_versions = versions
        .iter()
        .filter(|v| v.effective > d)
        .cloned()
        .collect();
    let cat = catalog::catalog();
    Ok(CatalogView {
        date: d,
        version,
        later_versions,
        clause_count: cat.clauses.len(),
        documents: documents(),
        notes: cat
            .notes
            .iter()
            .map(|n| NoteView {
                key: n.key.clone(),
                title_ja: n.title_ja.clone(),
                text_ja: n.text_ja.clone(),
                gist_en: n.gist_en.clone(),
            })
            .collect(),
    })
}

/// One clause with its controls in full, its parts and the way up.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClauseDetail {
    pub clause: ClauseView,
    /// The controls that name it, in full.
    pub controls: Vec<ControlView>,
    /// The controls that name a clause above it (they serve it too).
    pub inherited: Vec<ControlView>,
    /// From the article down to the parent.
    pub ancestors: Vec<ClauseView>,
    pub children: Vec<ClauseView>,
    /// Reviews that named this clause, newest first.
    pub reviews: Vec<ReviewView>,
}

/// A clause id from a URL; unknown or malformed is "not found".
pub fn find_clause(id: &str) -> Result<&'static Clause, AppError> {
    let parsed: ClauseId = id.parse().map_err(|_| AppError::NotFound("clause"))?;
    catalog::catalog()
        .clause(&parsed)
        .ok_or(AppError::NotFound("clause"))
}

pub async fn clause_detail(state: &AppState, id: &str) -> Result<ClauseDetail, AppError> {
    let c = find_clause(id)?;
    let cat = catalog::catalog();
    let mut ancestors = Vec::new();
    let mut up = c.parent;
    while let Some(p) = up {
        if let Some(pc) = cat.clause(&p) {
            ancestors.push(clause_view(pc));
        }
        up = p.parent();
    }
    ancestors.reverse();
    let own = c.id.to_string();
    let reviews = reviews(state)
        .await?
        .into_iter()
        .filter(|r| r.clauses.contains(&own))
        .collect();
    Ok(ClauseDetail {
        clause: clause_view(c),
        controls: cat.controls_for(&c.id).map(control_view).collect(),
        inherited: cat
            .controls_covering(&c.id)
            .filter(|ctl| !ctl.clauses.contains(&c.id))
            .map(control_view)
            .collect(),
        ancestors,
        children: cat.children(&c.id).map(clause_view).collect(),
        reviews,
    })
}

/// How many controls of one kind.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KindCount {
    pub kind: String,
    pub count: usize,
}

/// The whole mapping.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ControlsView {
    pub counts: Vec<KindCount>,
    pub total: usize,
    /// Clauses in the catalog, and how many the rule covers (all, when the
    /// mapping is complete; a test insists).
    pub clauses: usize,
    pub covered: usize,
    /// The kind filtered on, if any.
    pub kind: Option<String>,
    pub controls: Vec<ControlView>,
}

/// The mapping, optionally of one kind (`kind` names the field at fault).
pub fn controls(kind: Option<&str>) -> Result<ControlsView, AppError> {
    let kind = match kind.map(str::trim).filter(|k| !k.is_empty()) {
        None => None,
        Some(k) => Some(
            ControlKind::ALL
                .into_iter()
                .find(|c| c.as_str() == k)
                .ok_or_else(|| {
                    AppError::invalid("kind", "catalog.kind_invalid", &[("value", k.into())])
                })?,
        ),
    };
    let cat = catalog::catalog();
    let controls = cat
        .controls
        .iter()
        .filter(|c| kind.is_none_or(|k| c.kind == k))
        .map(control_view)
        .collect();
    Ok(ControlsView {
        counts: cat
            .counts_by_kind()
            .into_iter()
            .map(|(k, n)| KindCount {
                kind: k.as_str().into(),
                count: n,
            })
            .collect(),
        total: cat.controls.len(),
        clauses: cat.clauses.len(),
        covered: cat.clauses.len() - cat.uncovered().len(),
        kind: kind.map(|k| k.as_str().to_string()),
        controls,
    })
}

/// A review as recorded.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReviewView {
    pub id: i64,
    /// `YYYY-MM-DD`.
    pub reviewed_on: String,
    pub summary: String,
    pub clauses: Vec<String>,
    /// `amended` or `unchanged`.
    pub outcome: String,
    /// The version it produced, when it amended the policy.
    pub version: Option<VersionView>,
    pub reviewer: Option<String>,
    /// The role under which it was recorded (`security_director` or `cio`).
    pub reviewer_role: String,
    pub created_at: i64,
}

fn review_view(r: &ReviewRow, versions: &[VersionRow]) -> ReviewView {
    ReviewView {
        id: r.id,
        reviewed_on: r.reviewed_on.clone(),
        summary: r.summary.clone(),
        clauses: r.clauses.split_whitespace().map(String::from).collect(),
        outcome: r.outcome.clone(),
        version: versions
            .iter()
            .find(|v| v.review_id == r.id)
            .map(version_from_row),
        reviewer: r.reviewer_name.clone(),
        reviewer_role: r.reviewer_role.clone(),
        created_at: r.created_at,
    }
}

/// Every review, newest first.
pub async fn reviews(state: &AppState) -> Result<Vec<ReviewView>, AppError> {
    let mut conn = state.db().pool().acquire().await?;
    let rows = store::reviews(&mut conn).await?;
    let versions = store::versions(&mut conn).await?;
    Ok(rows.iter().map(|r| review_view(r, &versions)).collect())
}

/// A review to record (Y10, K34). The form and the API take the same
/// fields; `clauses` is a list of clause ids separated by spaces or commas.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewInput {
    /// When the review took place (`YYYY-MM-DD` or 和暦); not in the future.
    #[serde(default)]
    pub reviewed_on: String,
    /// What was reviewed and what changed (or why nothing did).
    #[serde(default)]
    pub summary: String,
    /// Clause ids changed or examined, e.g. `K17.4 K34`.
    #[serde(default)]
    pub clauses: String,
    /// `amended` (produces a version) or `unchanged`.
    #[serde(default)]
    pub outcome: String,
    /// Amended: the new version's label, e.g. `令和8年12月1日改正`.
    #[serde(default)]
    pub version_label: String,
    /// Amended: the date the new version takes effect.
    #[serde(default)]
    pub effective_on: String,
}

/// Splits and checks a list of clause ids: each must be in the catalog.
fn parse_clauses(text: &str, errors: &mut Vec<FieldError>) -> Vec<ClauseId> {
    let mut out: Vec<ClauseId> = Vec::new();
    for token in text
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '、' | '，' | ';'))
        .filter(|t| !t.is_empty())
    {
        match token.parse::<ClauseId>() {
            Ok(id) if catalog::catalog().clause(&id).is_some() => {
                if !out.contains(&id) {
                    out.push(id);
                }
            }
            _ => errors.push(
                FieldError::new("clauses", "catalog.clause_unknown", &[("id", token.into())])
                    .with_clause("Y10"),
            ),
        }
    }
    out.sort();
    out
}

fn check_text(errors: &mut Vec<FieldError>, field: &str, value: &str, max: usize) {
    if value.trim().is_empty() {
        errors.push(FieldError::new(field, "field.required", &[]));
    } else if value.chars().count() > max {
        errors.push(FieldError::new(
            field,
            "catalog.too_long",
            &[("max", max.to_string())],
        ));
    }
}

/// Records a review and, when it amends the policy, the version it
/// produces; both with one ledger record, in one transaction.
pub async fn record_review(
    state: &AppState,
    actor: &Actor,
    input: &ReviewInput,
) -> Result<ReviewView, AppError> {
    // Y10/K34 reviews are recorded by the セキュリティ統括者 or the CIO; the
    // permission table lets only them in, and the record says which.
    let role = [Role::SecurityDirector, Role::Cio]
        .into_iter()
        .find(|r| actor.holds(*r))
        .ok_or(AppError::Forbidden("record_policy_review"))?;
    let today = state.clock().today();
    let mut errors = Vec::new();
    let reviewed_on = if input.reviewed_on.trim().is_empty() {
        errors.push(FieldError::new("reviewed_on", "field.required", &[]));
        None
    } else {
        match parse_date("reviewed_on", &input.reviewed_on) {
            Ok(d) if d > today => {
                errors.push(FieldError::new(
                    "reviewed_on",
                    "catalog.review_in_future",
                    &[],
                ));
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                errors.push(e);
                None
            }
        }
    };
    check_text(&mut errors, "summary", &input.summary, MAX_SUMMARY);
    let clauses = parse_clauses(&input.clauses, &mut errors);
    let amended = match input.outcome.trim() {
        "amended" => true,
        "unchanged" => false,
        other => {
            errors.push(FieldError::new(
                "outcome",
                "catalog.outcome_invalid",
                &[("value", other.into())],
            ));
            false
        }
    };
    let label = input.version_label.trim();
    let mut effective = None;
    if amended {
        check_text(&mut errors, "version_label", label, MAX_LABEL);
        if catalog::catalog().versions.iter().any(|v| v.label == label) {
            errors.push(FieldError::new("version_label", "catalog.label_taken", &[]));
        }
        if input.effective_on.trim().is_empty() {
            errors.push(FieldError::new("effective_on", "field.required", &[]));
        } else {
            match parse_date("effective_on", &input.effective_on) {
                Ok(d) => effective = Some(d),
                Err(e) => errors.push(e),
            }
        }
    }
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    let Some(reviewed_on) = reviewed_on else {
        return Err(AppError::invalid("reviewed_on", "field.required", &[]));
    };
    let now = state.clock().unix();
    let clause_text = clauses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    let mut tx = state.db().begin().await?;
    if amended && store::label_taken(&mut tx, label).await? {
        return Err(AppError::invalid(
            "version_label",
            "catalog.label_taken",
            &[],
        ));
    }
    let summary = input.summary.trim();
    let id = store::insert_review(
        &mut tx,
        &NewReview {
            reviewed_on: &crate::clock::date_str(reviewed_on),
            summary,
            clauses: &clause_text,
            outcome: if amended { "amended" } else { "unchanged" },
            reviewer_id: actor.person_id.map(|p| p.0),
            reviewer_role: role.code(),
            now,
        },
    )
    .await?;
    if let (true, Some(effective)) = (amended, effective) {
        // The documents a version amends: those of the clauses named, or
        // both 要綱 and 基準 when the review names none.
        let mut docs: Vec<Document> = clauses.iter().map(|c| c.document()).collect();
        docs.sort();
        docs.dedup();
        if docs.is_empty() {
            docs = vec![Document::BasicPolicy, Document::Standards];
        }
        let letters: String = docs.iter().map(|d| d.letter()).collect();
        store::insert_version(
            &mut tx,
            label,
            &crate::clock::date_str(effective),
            summary,
            &letters,
            id,
            now,
        )
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                AppError::invalid("version_label", "catalog.label_taken", &[])
            }
            e => AppError::Db(e),
        })?;
    }
    let rec = crate::records::Record::new(
        actor.who(),
        "policy_review.record",
        format!("policy_review:{id}"),
        if clauses.iter().all(|c| c.document() == Document::Standards) && !clauses.is_empty() {
            "K34"
        } else {
            "Y10"
        },
    )
    .from_ip(actor.ip())
    .detail(json!({
        "reviewed_on": crate::clock::date_str(reviewed_on),
        "outcome": if amended { "amended" } else { "unchanged" },
        "clauses": clause_text,
        "version_label": if amended { Some(label) } else { None },
        "effective_on": effective.map(crate::clock::date_str),
    }));
    crate::records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    let row = store::review(&mut tx, id)
        .await?
        .ok_or(AppError::NotFound("policy review"))?;
    let versions = store::versions(&mut tx).await?;
    tx.commit().await?;
    state.ledger().poke();
    Ok(review_view(&row, &versions))
}
