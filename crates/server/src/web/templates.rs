//! Server-rendered HTML with minijinja. Templates are compiled into the
//! binary; `t("key")` in a template looks up the message catalog in the
//! request's language.

use super::i18n::{self, Lang};
use crate::auth::Actor;
use crate::web::error::AppError;
use axum::response::Html;
use minijinja::{Environment, Value};
use serde::Serialize;
use std::sync::OnceLock;

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../templates/", $name)))),*]
    };
}

/// Every template, by file name.
const TEMPLATES: &[(&str, &str)] = templates!(
    "layout.html",
    "error.html",
    "home.html",
    "login.html",
    "password.html",
    "me.html",
    "org.html",
    "org_unit.html",
    "people.html",
    "person.html",
    "personnel_event.html",
    "import.html",
    "accounts.html",
    "records.html",
    "settings.html",
    "otp.html",
    "ledger_search.html",
    "ledger_record.html",
    "ledger_analysis.html",
    "ledger_viewing_reports.html",
    "ledger_evidence.html",
    "assets.html",
    "asset_form.html",
    "asset.html",
    "access_review.html",
    "access.html",
    "cards_me.html",
    "cards.html",
    "card_login.html",
    "lock.html",
    "reauth.html",
    "incidents.html",
    "incident_new.html",
    "incident.html",
    "failures.html",
    "failure_procedures.html",
    "failure_procedure.html",
    "audits.html",
    "audit.html",
    "findings.html",
    "finding.html",
    "compliance_report.html",
    "inspections.html",
    "inspection_campaign.html",
    "inspection.html",
    "compliance.html",
    "compliance_check.html",
    "training.html",
    "training_session.html",
    "catalog.html",
    "catalog_clause.html",
    "catalog_controls.html",
    "policy_versions.html",
);

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        for (name, src) in TEMPLATES {
            if let Err(e) = env.add_template(name, src) {
                // A broken template fails the template test at build time.
                tracing::error!(template = name, error = %e, "template does not compile");
            }
        }
        env.add_function(
            "t",
            |key: String, kwargs: minijinja::value::Kwargs| -> Result<String, minijinja::Error> {
                let mut params = Vec::new();
                for k in kwargs.args() {
                    let v: Value = kwargs.get(k)?;
                    params.push((k.to_string(), v.to_string()));
                }
                let borrowed: Vec<(&str, String)> = params
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.clone()))
                    .collect();
                Ok(i18n::t(i18n::current(), &key, &borrowed))
            },
        );
        env.add_filter("datetime", |secs: Option<i64>| {
            secs.map(crate::clock::format_unix).unwrap_or_default()
        });
        env.add_filter("wareki", |date: Option<String>| {
            date.as_deref()
                .and_then(crate::clock::parse_date_str)
                .map(mamori_policy::wareki::format_date_ja)
                .unwrap_or_default()
        });
        env.add_filter("role_name", |code: String| {
            match code.parse::<mamori_policy::Role>() {
                Ok(r) if i18n::current() == Lang::En => r.en().to_string(),
                Ok(r) => r.ja().to_string(),
                Err(_) => code,
            }
        });
        env
    })
}

/// What every page's layout needs.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Chrome {
    pub lang: &'static str,
    pub csrf: String,
    pub login: Option<String>,
    /// Navigation entries the actor may use.
    pub nav: Vec<(&'static str, &'static str)>,
    pub must_change: bool,
    /// An integrity alarm of the ledger, for those who must act on it.
    pub alarm: Option<String>,
}

impl Chrome {
    pub fn anonymous(csrf: &str) -> Chrome {
        Chrome {
            lang: i18n::current().code(),
            csrf: csrf.into(),
            ..Default::default()
        }
    }

    pub fn for_actor(actor: &Actor) -> Chrome {
        use mamori_policy::permission::Action as A;
        let mut nav = vec![("/me", "nav.me")];
        if !actor.must_change && actor.scope(A::ReadIncidents).is_some() {
            nav.push(("/incidents", "nav.incidents"));
        }
        // K32.2: owners of audit findings reach them even without ViewAudits.
        if !actor.must_change
            && actor.scope(A::ViewAudits).is_none()
            && actor.scope(A::ReadFindings).is_some()
        {
            nav.push(("/findings", "nav.findings"));
        }
        let entries = [
            (A::ViewOrg, "/org", "nav.org"),
            (A::ViewPeople, "/people", "nav.people"),
            (A::ManageAccounts, "/accounts", "nav.accounts"),
            (A::ImportPersonnel, "/people/import", "nav.import"),
            (A::ViewRecords, "/records", "nav.records"),
            (A::ManageSettings, "/settings", "nav.settings"),
            (A::ViewStaffRecords, "/ledger/search", "nav.ledger_search"),
            (A::AnalyzeLedger, "/ledger/analysis", "nav.ledger_analysis"),
            (
                A::ReadViewingReports,
                "/ledger/viewing-reports",
                "nav.viewing_reports",
            ),
            (A::FreezeEvidence, "/ledger/evidence", "nav.evidence"),
            (A::ViewSystems, "/assets", "nav.assets"),
            (A::RequestAccess, "/access", "nav.access"),
            (A::ManageCards, "/cards", "nav.cards"),
            (A::ViewFailureRecords, "/failures", "nav.failures"),
            (A::ViewCompliance, "/compliance", "nav.compliance"),
            (A::AttendTraining, "/training", "nav.training"),
            (
                A::ViewFailureProcedures,
                "/failure-procedures",
                "nav.failure_procedures",
            ),
            (A::ViewCatalog, "/catalog", "nav.catalog"),
            (A::ViewAudits, "/audits", "nav.audits"),
            (
                A::ViewComplianceReport,
                "/reports/compliance",
                "nav.compliance_report",
            ),
            (A::ViewInspections, "/inspections", "nav.inspections"),
        ];
        if !actor.must_change {
            nav.push(("/me/cards", "nav.my_cards"));
            for (action, href, key) in entries {
                if actor.scope(action).is_some() {
                    nav.push((href, key));
                }
            }
        }
        // K16.2.2: a record altered behind Mamori's back is shown to the
        // セキュリティ総括管理者 (and those who audit the ledger) on every page.
        let alarm = if actor.scope(A::AuditLedger).is_some() {
            crate::ledger::current_alarm()
        } else {
            None
        };
        Chrome {
            lang: i18n::current().code(),
            csrf: actor.session.csrf.clone(),
            login: Some(actor.login.clone()),
            nav,
            must_change: actor.must_change,
            alarm,
        }
    }
}

/// Renders a template with the chrome and the page's own context.
pub fn render<S: Serialize>(name: &str, chrome: &Chrome, ctx: S) -> Result<Html<String>, AppError> {
    let tmpl = env()
        .get_template(name)
        .map_err(|e| AppError::Internal(format!("template {name}: {e}")))?;
    let html = tmpl
        .render(minijinja::context! { chrome => chrome, page => Value::from_serialize(&ctx) })
        .map_err(|e| AppError::Internal(format!("render {name}: {e:#}")))?;
    Ok(Html(html))
}

/// The error page (never fails: falls back to plain text).
pub fn render_error(status: u16, message: &str) -> Html<String> {
    let chrome = Chrome::anonymous("");
    match render(
        "error.html",
        &chrome,
        minijinja::context! { status => status, message => message },
    ) {
        Ok(h) => h,
        Err(_) => Html(format!(
            "<!doctype html><title>{status}</title><p>{}</p>",
            html_escape(message)
        )),
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        let mut env = Environment::new();
        env.add_function("t", |_k: String, _kw: minijinja::value::Kwargs| {
            String::new()
        });
        env.add_filter("datetime", |_: Option<i64>| String::new());
        env.add_filter("wareki", |_: Option<String>| String::new());
        env.add_filter("role_name", |s: String| s);
        for (name, src) in TEMPLATES {
            env.add_template(name, src)
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
    }
}
