//! The OpenAPI 3.1 document for every `/api/v1` route, generated from the
//! handlers' annotations. A test checks it lists every registered route.
//!
//! Choices where SPEC §4 is silent: the session cookie authenticates people
//! (`POST /api/v1/session`); JSON bodies must be `application/json` and may
//! not carry unknown fields; errors are RFC 9457 problem+json with `code`,
//! `field` and `errors[]` naming every field at fault.

use axum::response::IntoResponse;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Mamori API", description = "江戸川区情報セキュリティポリシーを運用する Mamori の API。"),
    paths(
        crate::identity::api::login, crate::identity::api::logout, crate::identity::api::me,
        crate::identity::api::change_password, crate::identity::api::my_sessions, crate::identity::api::end_my_session,
        crate::identity::api::administer, crate::identity::api::reset_password, crate::identity::api::force_change_many,
        crate::identity::api::create_shared, crate::identity::api::get_settings, crate::identity::api::put_settings,
        crate::org::api::list_units, crate::org::api::create_unit, crate::org::api::get_unit, crate::org::api::update_unit,
        crate::org::api::list_assignments, crate::org::api::assign, crate::org::api::end_assignment,
        crate::org::api::chain, crate::org::api::approver, crate::org::api::list_systems,
        crate::people::api::list, crate::people::api::get, crate::people::api::list_events,
        crate::people::api::submit, crate::people::api::import,
        crate::records::routes::list,
        crate::ledger::api::ingest, crate::ledger::api::checkpoint, crate::ledger::api::key, crate::ledger::api::keys, crate::ledger::api::tile,
        crate::ledger::api::record, crate::ledger::api::inclusion, crate::ledger::api::consistency,
        crate::ledger::search_api::search, crate::ledger::search_api::view, crate::ledger::search_api::analysis,
        crate::ledger::search_api::list_reports, crate::ledger::search_api::file_report,
        crate::ledger::bundle::api_freeze, crate::ledger::bundle::api_list, crate::ledger::bundle::api_download,
        crate::assets::api::check, crate::assets::api::check_batch,
        crate::assets::api::list_assets, crate::assets::api::create_asset, crate::assets::api::get_asset,
        crate::assets::api::update_asset, crate::assets::api::retire_asset, crate::assets::api::name_operator,
        crate::assets::api::end_operator, crate::assets::api::list_grants, crate::assets::api::who_can_access,
        crate::assets::api::start_review, crate::assets::api::what_can_access, crate::assets::api::list_requests,
        crate::assets::api::request_access, crate::assets::api::decide_request, crate::assets::api::withdraw_request,
        crate::assets::api::end_grant, crate::assets::api::get_review, crate::assets::api::decide_item,
        crate::assets::api::complete_review, crate::assets::api::get_scales, crate::assets::api::put_scale,
        crate::assets::api::list_areas, crate::assets::api::create_area,
        crate::cards::api::my_cards, crate::cards::api::start_my_registration, crate::cards::api::finish_my_registration,
        crate::cards::api::report_my_card_lost, crate::cards::api::list_cards, crate::cards::api::start_registration,
        crate::cards::api::finish_registration, crate::cards::api::card_action, crate::cards::api::loss_reports,
        crate::cards::api::get_settings, crate::cards::api::put_settings, crate::cards::api::start_card,
        crate::cards::api::finish_card, crate::cards::api::unlock, crate::cards::api::reauth,
        crate::incidents::api::report, crate::incidents::api::list, crate::incidents::api::get,
        crate::incidents::api::act, crate::incidents::api::promote, crate::incidents::api::add_entry,
        crate::incidents::api::emergency_action, crate::incidents::api::evidence,
        crate::incidents::api::upload, crate::incidents::api::download, crate::incidents::api::record_failure,
        crate::incidents::api::notifications, crate::incidents::api::failure_records,
        crate::incidents::api::get_address, crate::incidents::api::put_address,
        crate::incidents::api::recurrence, crate::incidents::api::procedures,
        crate::incidents::api::write_procedure, crate::incidents::api::set_critical,
        crate::catalog::api::get_catalog, crate::catalog::api::get_clause, crate::catalog::api::get_controls,
        crate::catalog::api::get_versions, crate::catalog::api::list_reviews, crate::catalog::api::record_review,
        crate::audits::api::list, crate::audits::api::create, crate::audits::api::get, crate::audits::api::update,
        crate::audits::api::close, crate::audits::api::add_auditor, crate::audits::api::add_finding,
        crate::audits::api::findings, crate::audits::api::finding, crate::audits::api::follow_up,
        crate::reports::api::json, crate::reports::api::pdf,
        crate::inspections::api::list_campaigns, crate::inspections::api::open_campaign,
        crate::inspections::api::get_campaign, crate::inspections::api::close_campaign,
        crate::inspections::api::compilation, crate::inspections::api::list_inspections,
        crate::inspections::api::get_inspection, crate::inspections::api::save_answers,
        crate::inspections::api::submit, crate::inspections::api::return_inspection,
        crate::inspections::api::upload_evidence, crate::inspections::api::download_evidence,
        openapi_doc,
    ),
    components(schemas(crate::web::error::Problem, crate::web::error::FieldError)),
    tags((name = "identity", description = "login, my account (K11, K17)"),
         (name = "accounts", description = "account administration (K11.1.5, K17.2–3)"),
         (name = "org", description = "organisation and roles (Y4, K8)"),
         (name = "people", description = "people and personnel events (K17.3)"),
         (name = "records", description = "records of every change (K16.2)"),
         (name = "settings", description = "ward settings (K17.4)"),
         (name = "access", description = "access decisions for ward systems (bearer token with access:check), requests, grants and reviews (K3.2.1, K12.1.2, K17.2, K18). A decision names the person by 職員番号 and the asset by its register code; an unknown one is a 422 naming the field, never a silent deny"),
         (name = "assets", description = "the information asset register and its classification scales (Y5, K3.1)"),
         (name = "cards", description = "IC cards as FIDO2 keys through WebAuthn (K11.2)"),
         (name = "incidents", description = "incident and failure reports walking the chain (K10), security incident response (K27, K25)"),
         (name = "inspections", description = "self-inspection campaigns ordered by the セキュリティ統括者, answered per department by its セキュリティ管理者, compiled ward-wide (K32.1, K29, K32.3)"),
         (name = "failures", description = "failure records (K16.4, K10.4) and failure procedures (K26)"),
         (name = "catalog", description = "the policy catalog: every clause with its text, gist and controls; versions from the 付則 and policy reviews (SPEC §3.9; Y10, K34)"),
         (name = "audits", description = "external audits ordered by the セキュリティ統括者: time-limited read-only auditor accounts, findings with owner, due date and follow-up to closure (K32.2)"),
         (name = "reports", description = "the compiled inspection and audit report for the CIO and the 情報化推進本部, as JSON and PDF (K32.3–4)"),
         (name = "ledger", description = "the access-record ledger: C2SP tlog-tiles, signed-note checkpoints, RFC 9162 proofs (K16.2)"))
)]
pub struct ApiDoc;

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "identity", responses((status = 200, description = "OpenAPI 3.1 document")))]
pub async fn openapi_doc() {}

/// The whole document: this one with the capabilities' own documents
/// merged in (each keeps its paths beside its handlers).
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::compliance::api::ApiDoc::openapi());
    doc.merge(crate::training::api::ApiDoc::openapi());
    doc
}

pub async fn serve() -> impl IntoResponse {
    axum::Json(document())
}
