//! The demo ward (`mamori serve --demo`): the Edogawa structure the policy
//! names (経営企画部 情報政策課, the 別表 offices, 中央図書館, 教育研究所, a few
//! 課 and 学校, one 指定管理者 and one 関係団体), the two ward systems it names,
//! and people in every role and employment type with passwords that obey
//! every rule, printed once and written to `<data>/demo-accounts.txt` (0600).

use crate::app::AppState;
use crate::clock::date_str;
use crate::ids::OrgUnitId;
use crate::org::store::{self as org_store, NewAssignment, NewUnit};
use crate::org::UnitKind;
use crate::people::store::{self as people_store, NewPerson};
use crate::records::{self, Record, Who};
use mamori_policy::password;
use mamori_policy::Role;
use std::collections::HashMap;
use std::path::PathBuf;

/// (code, name, English name, kind, parent code)
const UNITS: &[(&str, &str, &str, UnitKind, &str)] = &[
    ("edogawa", "江戸川区", "Edogawa City", UnitKind::Ward, ""),
    (
        "kikaku",
        "経営企画部",
        "Corporate Planning Dept.",
        UnitKind::Department,
        "edogawa",
    ),
    (
        "johoseisaku",
        "情報政策課",
        "Information Policy Section",
        UnitKind::Section,
        "kikaku",
    ),
    (
        "kikaku-ka",
        "企画課",
        "Planning Section",
        UnitKind::Section,
        "kikaku",
    ),
    (
        "somu",
        "総務部",
        "General Affairs Dept.",
        UnitKind::Department,
        "edogawa",
    ),
    (
        "somu-ka",
        "総務課",
        "General Affairs Section",
        UnitKind::Section,
        "somu",
    ),
    (
        "shokuin-ka",
        "職員課",
        "Personnel Section",
        UnitKind::Section,
        "somu",
    ),
    (
        "kumin",
        "区民部",
        "Residents Dept.",
        UnitKind::Department,
        "edogawa",
    ),
    (
        "koseki",
        "戸籍住民課",
        "Family Register Section",
        UnitKind::Section,
        "kumin",
    ),
    (
        "komatsugawa",
        "江戸川区小松川事務所",
        "Komatsugawa Office",
        UnitKind::Section,
        "kumin",
    ),
    (
        "kasai",
        "江戸川区葛西事務所",
        "Kasai Office",
        UnitKind::Section,
        "kumin",
    ),
    (
        "koiwa",
        "江戸川区小岩事務所",
        "Koiwa Office",
        UnitKind::Section,
        "kumin",
    ),
    (
        "tobu",
        "江戸川区東部事務所",
        "Tobu Office",
        UnitKind::Section,
        "kumin",
    ),
    (
        "shishibone",
        "江戸川区鹿骨事務所",
        "Shishibone Office",
        UnitKind::Section,
        "kumin",
    ),
    (
        "kibou",
        "江戸川区希望の家",
        "Kibou no Ie",
        UnitKind::Section,
        "kumin",
    ),
    (
        "bunka",
        "文化共育部",
        "Culture Dept.",
        UnitKind::Department,
        "edogawa",
    ),
    (
        "bunka-ka",
        "文化課",
        "Culture Section",
        UnitKind::Section,
        "bunka",
    ),
    (
        "kyoiku",
        "教育委員会事務局",
        "Board of Education Secretariat",
        UnitKind::Department,
        "edogawa",
    ),
    (
        "gakumu",
        "学務課",
        "School Affairs Section",
        UnitKind::Section,
        "kyoiku",
    ),
    (
        "toshokan",
        "江戸川区立中央図書館",
        "Central Library",
        UnitKind::Section,
        "kyoiku",
    ),
    (
        "kenkyujo",
        "江戸川区教育研究所",
        "Education Research Institute",
        UnitKind::Section,
        "kyoiku",
    ),
    (
        "matsue-sho",
        "江戸川区立松江小学校",
        "Matsue Elementary School",
        UnitKind::School,
        "kyoiku",
    ),
    (
        "komatsugawa-chu",
        "江戸川区立小松川中学校",
        "Komatsugawa Junior High School",
        UnitKind::School,
        "kyoiku",
    ),
    (
        "kankyo",
        "江戸川区環境促進事業団",
        "Environment Promotion Foundation",
        UnitKind::RelatedOrganisation,
        "edogawa",
    ),
    (
        "sports-shitei",
        "スポーツランド指定管理者",
        "Sports Land designated manager",
        UnitKind::DesignatedManager,
        "edogawa",
    ),
];

/// The demo people's notification mail domain (reserved: RFC 2606).
pub const DEMO_MAIL_DOMAIN: &str = "mamori-demo.example";

/// (family kanji, family kana, family romaji)
const FAMILY: &[(&str, &str, &str)] = &[
    ("佐藤", "サトウ", "Sato"),
    ("鈴木", "スズキ", "Suzuki"),
    ("高橋", "タカハシ", "Takahashi"),
    ("田中", "タナカ", "Tanaka"),
    ("伊藤", "イトウ", "Ito"),
    ("渡辺", "ワタナベ", "Watanabe"),
    ("山本", "ヤマモト", "Yamamoto"),
    ("中村", "ナカムラ", "Nakamura"),
    ("小林", "コバヤシ", "Kobayashi"),
    ("加藤", "カトウ", "Kato"),
    ("吉田", "ヨシダ", "Yoshida"),
    ("山田", "ヤマダ", "Yamada"),
    ("佐々木", "ササキ", "Sasaki"),
    ("松本", "マツモト", "Matsumoto"),
    ("井上", "イノウエ", "Inoue"),
];
const GIVEN: &[(&str, &str, &str)] = &[
    ("太郎", "タロウ", "Taro"),
    ("花子", "ハナコ", "Hanako"),
    ("健一", "ケンイチ", "Kenichi"),
    ("美咲", "ミサキ", "Misaki"),
    ("大輔", "ダイスケ", "Daisuke"),
    ("由美", "ユミ", "Yumi"),
    ("翔太", "ショウタ", "Shota"),
    ("恵子", "ケイコ", "Keiko"),
    ("誠", "マコト", "Makoto"),
    ("陽子", "ヨウコ", "Yoko"),
    ("直樹", "ナオキ", "Naoki"),
    ("彩", "アヤ", "Aya"),
    ("拓也", "タクヤ", "Takuya"),
];

/// (unit code, title, employment, roles (role, scope unit or "" for the
/// person's unit, system code for operators))
type DemoPerson = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(Role, &'static str)],
);

const PEOPLE: &[DemoPerson] = &[
    ("edogawa", "副区長", "regular", &[(Role::Cio, "-")]),
    (
        "kikaku",
        "経営企画部長",
        "regular",
        &[(Role::SecurityDirector, "-")],
    ),
    (
        "johoseisaku",
        "情報政策課長",
        "regular",
        &[
            (Role::SecurityChiefManager, "-"),
            (Role::SecurityManager, ""),
        ],
    ),
    (
        "johoseisaku",
        "係長",
        "regular",
        &[(Role::PromotionLeader, "")],
    ),
    ("johoseisaku", "主任", "regular", &[(Role::Operator, "")]),
    (
        "johoseisaku",
        "主事",
        "reappointed",
        &[(Role::DesignatedViewer, "")],
    ),
    ("johoseisaku", "主事", "dispatched", &[]),
    (
        "kikaku-ka",
        "企画課長",
        "regular",
        &[(Role::SecurityManager, "")],
    ),
    ("kikaku-ka", "主事", "regular", &[]),
    (
        "somu-ka",
        "総務課長",
        "regular",
        &[(Role::SecurityManager, "")],
    ),
    ("somu-ka", "主事", "part_time", &[]),
    (
        "shokuin-ka",
        "職員課長",
        "regular",
        &[(Role::SecurityManager, "")],
    ),
    (
        "shokuin-ka",
        "主任",
        "regular",
        &[(Role::PromotionLeader, "")],
    ),
    ("shokuin-ka", "主事", "temporary", &[]),
    (
        "koseki",
        "戸籍住民課長",
        "regular",
        &[(Role::SecurityManager, "")],
    ),
    ("koseki", "係長", "regular", &[(Role::PromotionLeader, "")]),
    ("koseki", "主事", "regular", &[(Role::DesignatedViewer, "")]),
    ("koseki", "主事", "part_time", &[]),
    (
        "komatsugawa",
        "所長",
        "regular",
        &[(Role::SecurityManager, "")],
    ),
    ("kasai", "所長", "regular", &[(Role::SecurityManager, "")]),
    ("kasai", "主事", "reappointed", &[]),
    ("koiwa", "所長", "regular", &[(Role::SecurityManager, "")]),
    ("tobu", "所長", "regular", &[(Role::SecurityManager, "")]),
    (
        "shishibone",
        "所長",
        "regular",
        &[(Role::SecurityManager, "")],
    ),
    ("kibou", "所長", "regular", &[(Role::SecurityManager, "")]),
    (
        "bunka-ka",
        "文化課長",
        "regular",
        &[(Role::SecurityManager, "")],
    ),
    (
        "bunka-ka",
        "主任",
        "regular",
        &[(Role::Operator, "facility")],
    ),
    ("bunka-ka", "主事", "temporary", &[]),
    (
        "gakumu",
        "学務課長",
        "regular",
        &[(Role::SecurityManager, "")],
    ),
    ("gakumu", "主事", "regular", &[]),
    (
        "toshokan",
        "館長",
        "regular",
        &[(Role::SecurityManager, "")],
    ),
    (
        "toshokan",
        "主任",
        "regular",
        &[(Role::Operator, "library")],
    ),
    ("toshokan", "司書", "part_time", &[]),
    (
        "kenkyujo",
        "所長",
        "regular",
        &[(Role::SecurityManager, "")],
    ),
    ("kenkyujo", "指導主事", "reappointed", &[]),
    (
        "matsue-sho",
        "校長",
        "regular",
        &[(Role::SecurityManager, "")],
    ),
    ("matsue-sho", "事務主事", "temporary", &[]),
    (
        "komatsugawa-chu",
        "校長",
        "regular",
        &[(Role::SecurityManager, "")],
    ),
    (
        "kankyo",
        "事務局長",
        "outside",
        &[(Role::SecurityManager, "")],
    ),
    ("kankyo", "職員", "outside", &[]),
    (
        "sports-shitei",
        "施設長",
        "outside",
        &[(Role::SecurityManager, "")],
    ),
    ("sports-shitei", "受付係", "outside", &[]),
    ("", "外部監査人", "outside", &[(Role::ExternalAuditor, "-")]),
];

/// A demo password: three random syllable groups and digits, which every
/// rule accepts (checked before use).
fn demo_password() -> String {
    use rand::Rng;
    const SYL: &[&str] = &[
        "ka", "mi", "ro", "su", "te", "no", "ha", "yu", "ri", "wa", "ze", "po", "ku", "me", "to",
        "ne",
    ];
    let mut rng = rand::rngs::OsRng;
    let mut word = |n: usize| -> String {
        let w: String = (0..n).map(|_| SYL[rng.gen_range(0..SYL.len())]).collect();
        let mut c = w.chars();
        match c.next() {
            Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
            None => w,
        }
    };
    let a = word(3);
    let b = word(3);
    let c = word(2);
    format!("{a}-{b}-{c}{}", rng.gen_range(10..99))
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Other(String),
}

/// Loads the demo ward if the database has no org units yet. Returns the
/// path of the accounts file when it loaded.
pub async fn load_if_empty(state: &AppState) -> Result<Option<PathBuf>, DemoError> {
    let today_d = state.clock().today();
    let today = date_str(today_d);
    let now = state.clock().unix();
    let mut tx = state.db().begin().await?;
    if !org_store::list_units(&mut tx).await?.is_empty() {
        return Ok(None);
    }
    let mut units: HashMap<&str, OrgUnitId> = HashMap::new();
    for (code, name, en, kind, parent) in UNITS {
        let parent_id = units.get(parent).copied();
        let id = org_store::insert_unit(
            &mut tx,
            &NewUnit {
                code,
                name,
                name_en: en,
                kind: *kind,
                parent_id,
                valid_from: "2002-04-01",
                valid_to: None,
            },
            now,
        )
        .await?;
        units.insert(code, id);
    }
    let mut systems = HashMap::new();
    systems.insert(
        "facility",
        org_store::insert_system(
            &mut tx,
            "facility",
            "施設予約システム",
            units["bunka-ka"],
            now,
        )
        .await?,
    );
    systems.insert(
        "library",
        org_store::insert_system(&mut tx, "library", "図書館システム", units["toshokan"], now)
            .await?,
    );

    let mut lines = vec![
        "# Mamori demo ward accounts. Demo data only: delete this file after use.".to_string(),
        "# login\tpassword\tname\tunit\ttitle\troles".to_string(),
    ];
    let mut pids = Vec::with_capacity(PEOPLE.len());
    for (i, (unit, title, employment, roles)) in PEOPLE.iter().enumerate() {
        let (fk, fa, fr) = FAMILY[i % FAMILY.len()];
        let (gk, ga, gr) = GIVEN[(i * 7 + 3) % GIVEN.len()];
        let number = format!("{:06}", 100_101 + i * 37);
        let birth = today_d
            .replace_year(today_d.year() - 25 - (i as i32 % 35))
            .unwrap_or(today_d);
        let birth = birth
            .checked_sub(time::Duration::days((i as i64 * 53) % 300))
            .unwrap_or(birth);
        let unit_id = units.get(unit).copied();
        let pid = people_store::insert_person(
            &mut tx,
            &NewPerson {
                employee_number: &number,
                name_kanji: &format!("{fk} {gk}"),
                name_kana: &format!("{fa} {ga}"),
                name_romaji: &format!("{fr} {gr}"),
                birth_date: Some(&date_str(birth)),
                employment,
                org_unit_id: unit_id,
                title,
                status: "active",
                hired_on: Some("2010-04-01"),
            },
            now,
        )
        .await?;
        pids.push(pid);
        let account =
            crate::identity::store::insert_personal_account(&mut tx, pid, &number, false, now)
                .await?;
        // Where incident notifications are mailed (SPEC §3.6); `.example`
        // is reserved, so demo mail can never reach a real mailbox.
        crate::mail::set_address(&mut tx, pid.0, &format!("{number}@{DEMO_MAIL_DOMAIN}"), now)
            .await?;
        let facts = password::PersonFacts {
            employee_number: number.as_str().into(),
            login_id: number.as_str().into(),
            family_name_kanji: fk.into(),
            given_name_kanji: gk.into(),
            full_name_kanji: format!("{fk}{gk}").into(),
            family_name_kana: fa.into(),
            given_name_kana: ga.into(),
            family_name_romaji: fr.into(),
            given_name_romaji: gr.into(),
            birth_date: Some(birth),
        };
        let pw = loop {
            let candidate = demo_password();
            if password::check_password(&state.config().password, &candidate, &facts).is_ok() {
                break candidate;
            }
        };
        let normalized = password::normalize_password(&pw);
        let hash = state
            .hasher()
            .hash(&normalized)
            .await
            .map_err(|e| DemoError::Other(e.to_string()))?;
        let fp = password::fingerprint_bits(
            state.fingerprint_key(),
            &normalized,
            password::DEFAULT_FINGERPRINT_BITS,
        );
        crate::identity::store::set_password(&mut tx, account, &hash, i64::from(fp), now, false)
            .await?;
        let mut role_names = Vec::new();
        for (role, scope) in roles.iter() {
            let (org_unit_id, system_id) = match *scope {
                "-" => (None, None),
                "" => (unit_id, None),
                sys => (None, systems.get(sys).copied()),
            };
            org_store::insert_assignment(
                &mut tx,
                &NewAssignment {
                    person_id: pid,
                    role: role.code(),
                    org_unit_id,
                    system_id,
                    valid_from: "2024-04-01",
                    valid_to: None,
                    created_by: None,
                },
                now,
            )
            .await?;
            role_names.push(role.ja());
        }
        let unit_name = UNITS
            .iter()
            .find(|u| u.0 == *unit)
            .map(|u| u.1)
            .unwrap_or("-");
        lines.push(format!(
            "{number}\t{pw}\t{fk} {gk}\t{unit_name}\t{title}\t{}",
            role_names.join("・")
        ));
    }
    load_assets(&mut tx, &units, &pids, now).await?;
    // K26: both ward systems serve residents; the library has a failure
    // procedure, the facility reservation system not yet (so it is flagged).
    for (code, reason) in [
        ("facility", "施設予約が止まると区民の予約・利用ができない"),
        ("library", "貸出・返却と蔵書検索が止まる"),
    ] {
        crate::incidents::failures::store::set_critical(&mut tx, code, true, reason, None, now)
            .await?;
    }
    crate::incidents::failures::store::insert_procedure(
        &mut tx,
        "library",
        1,
        "図書館システム障害時の対応手順",
        "1. 館長（セキュリティ管理者）へ報告する。\n2. 委託先の保守窓口へ連絡する。\n3. 復旧の見込みを館内に掲示する。",
        "貸出・返却は紙の貸出票に記録し、復旧後に入力する。蔵書検索は窓口で案内する。",
        None,
        now,
    )
    .await?;
    load_training(&mut tx, &units, &pids, today_d, now).await?;
    let rec = Record::new(Who::Cli, "demo.load", "ward", "Y4")
        .detail(serde_json::json!({ "people": PEOPLE.len(), "units": UNITS.len(), "date": today }));
    records::append(&mut tx, state.clock().unix_micros(), &rec).await?;
    tx.commit().await?;
    crate::assets::service::after_commit(state).await;
    // A first run of the compliance checks, so the dashboard has data.
    crate::compliance::run_all_as(state, crate::compliance::Trigger::Schedule, &Who::Cli, None)
        .await
        .map_err(|e| DemoError::Other(e.to_string()))?;
    let path = state.config().data_dir.join("demo-accounts.txt");
    crate::app::write_private(&path, (lines.join("\n") + "\n").as_bytes())
        .map_err(|e| DemoError::Other(e.to_string()))?;
    Ok(Some(path))
}

/// The demo ward's asset register (Y5, K3.1): the two systems the policy
/// names, the resident register with its data, an operations secret of
/// the information policy section, two managed areas, named operators,
/// grants with time, weekday, zone and area conditions, and one request
/// waiting for its manager.
async fn load_assets(
    tx: &mut crate::db::Conn,
    units: &HashMap<&str, OrgUnitId>,
    pids: &[crate::ids::PersonId],
    now: i64,
) -> Result<(), DemoError> {
    use crate::assets::conditions::{ConditionsDoc, WindowDoc};
    use crate::assets::store::{self as asset_store, AssetColumns, Terms};
    use crate::assets::{AssetKind, SubjectRef};
    let server_room =
        asset_store::insert_area(tx, "server-room", "情報政策課サーバ室", now).await?;
    let counter = asset_store::insert_area(tx, "koseki-counter", "戸籍住民課窓口", now).await?;
    let _ = (server_room, counter);
    // (code, name, kind, parent, unit, manager index, level, ground,
    //  integrity/availability, national r6, personal, zone, external)
    type DemoAsset = (
        &'static str,
        &'static str,
        AssetKind,
        Option<&'static str>,
        &'static str,
        usize,
        &'static str,
        Option<&'static str>,
        &'static str,
        &'static str,
        bool,
        &'static str,
        bool,
    );
    const ASSETS: &[DemoAsset] = &[
        (
            "juki",
            "住民基本台帳システム",
            AssetKind::System,
            None,
            "koseki",
            14,
            "secret",
            Some("K3.1.1.a"),
            "high",
            "3A",
            true,
            "my_number",
            false,
        ),
        (
            "juki-db",
            "住民記録データ",
            AssetKind::Dataset,
            Some("juki"),
            "koseki",
            14,
            "secret",
            Some("K3.1.1.a"),
            "high",
            "3A",
            true,
            "my_number",
            false,
        ),
        (
            "network-config",
            "庁内ネットワーク機器設定情報",
            AssetKind::Dataset,
            None,
            "johoseisaku",
            2,
            "secret",
            Some("K3.1.1.b"),
            "high",
            "3B",
            false,
            "lgwan",
            false,
        ),
        (
            "bunsho",
            "文書管理システム",
            AssetKind::System,
            None,
            "somu-ka",
            9,
            "general",
            None,
            "normal",
            "2",
            false,
            "lgwan",
            false,
        ),
        (
            "facility",
            "施設予約システム",
            AssetKind::System,
            None,
            "bunka-ka",
            25,
            "general",
            None,
            "normal",
            "2",
            true,
            "internet",
            true,
        ),
        (
            "library",
            "図書館システム",
            AssetKind::System,
            None,
            "toshokan",
            30,
            "general",
            None,
            "normal",
            "2",
            true,
            "internet",
            true,
        ),
        (
            "library-patrons",
            "図書館利用者情報",
            AssetKind::Dataset,
            Some("library"),
            "toshokan",
            30,
            "secret",
            Some("K3.1.1.a"),
            "high",
            "3C",
            true,
            "internet",
            false,
        ),
    ];
    let mut ids: HashMap<&str, i64> = HashMap::new();
    for (
        code,
        name,
        kind,
        parent,
        unit,
        manager,
        level,
        ground,
        ia,
        r6,
        personal,
        zone,
        external,
    ) in ASSETS
    {
        let id = asset_store::insert_asset(
            tx,
            &AssetColumns {
                code,
                name,
                name_en: "",
                kind: *kind,
                parent_id: parent.and_then(|p| ids.get(p).copied()),
                owner_org_unit_id: units[unit],
                security_manager_id: Some(pids[*manager]),
                confidentiality: level,
                secret_ground: *ground,
                integrity: ia,
                availability: ia,
                national_c: if *level == "secret" { "3" } else { "2" },
                national_c_r6: r6,
                personal_info: *personal,
                zone,
                external_connection: *external,
                description: "",
            },
            now,
        )
        .await?;
        ids.insert(code, id);
    }
    // K18: operators named for the systems they run.
    for (asset, person, reason) in [
        ("facility", 26, "施設予約システムの運用保守"),
        ("library", 31, "図書館システムの運用保守"),
        ("network-config", 4, "ネットワーク機器の設定変更"),
    ] {
        asset_store::insert_operator(tx, ids[asset], pids[person], Some(pids[2]), reason, now)
            .await?;
    }
    let office_hours = ConditionsDoc {
        windows: vec![WindowDoc {
            start: "08:30".into(),
            end: "17:15".into(),
        }],
        weekdays: ["mon", "tue", "wed", "thu", "fri"]
            .iter()
            .map(|d| d.to_string())
            .collect(),
        zones: vec!["my_number".into()],
        areas: vec![],
    };
    let at_counter = ConditionsDoc {
        areas: vec!["koseki-counter".into()],
        ..office_hours.clone()
    };
    // (asset, person index, actions, conditions, approver index)
    let grants: [(&str, usize, &[&str], &ConditionsDoc, usize); 4] = [
        ("juki", 15, &["read", "write"], &office_hours, 14),
        ("juki-db", 15, &["read", "write"], &office_hours, 14),
        ("juki-db", 17, &["read"], &at_counter, 14),
        (
            "library-patrons",
            32,
            &["read"],
            &ConditionsDoc::default(),
            30,
        ),
    ];
    for (asset, person, actions, conditions, approver) in grants {
        let terms = Terms {
            asset_id: ids[asset],
            subject: SubjectRef::Person(pids[person].0),
            actions: actions.iter().map(|a| a.to_string()).collect(),
            valid_from: None,
            valid_until: None,
            conditions: conditions.clone(),
            unit_reason: None,
        };
        let request =
            asset_store::insert_request(tx, &terms, "窓口業務のため", Some(pids[person]), now)
                .await?;
        let grant =
            asset_store::insert_grant(tx, &terms, Some(request), Some(pids[approver]), now).await?;
        asset_store::decide_request(
            tx,
            request,
            "approved",
            Some(pids[approver]),
            "業務上必要",
            Some(grant),
            now,
        )
        .await?;
    }
    // One request waiting for the 戸籍住民課長.
    let waiting = Terms {
        asset_id: ids["juki-db"],
        subject: SubjectRef::Person(pids[17].0),
        actions: vec!["export".into()],
        valid_from: None,
        valid_until: None,
        conditions: at_counter,
        unit_reason: None,
    };
    asset_store::insert_request(
        tx,
        &waiting,
        "証明書発行の控えを庁内の保存媒体へ複製するため",
        Some(pids[17]),
        now,
    )
    .await?;
    Ok(())
}

/// Training (K9): a required ward-wide session held a month ago that a few
/// people missed (so the K9 check has items), a briefing for the 戸籍住民課
/// to come, and an instruction from its manager to its 情報化推進リーダー.
async fn load_training(
    tx: &mut crate::db::Conn,
    units: &HashMap<&str, OrgUnitId>,
    pids: &[crate::ids::PersonId],
    today: time::Date,
    now: i64,
) -> Result<(), DemoError> {
    use crate::training::store::{self as training_store, NewSession};
    let past = date_str(today - time::Duration::days(30));
    let soon = date_str(today + time::Duration::days(14));
    let chief = pids.get(2).map(|p| p.0);
    let held = training_store::insert_session(
        tx,
        &NewSession {
            title: "情報セキュリティ基礎研修",
            held_on: &past,
            description: "対策要綱と基準の趣旨、パスワードとICカードの扱い、事故の報告（基準第9条第1項）。",
            audience: "all",
            units: &[],
            roles: &[],
            required: true,
            organiser_id: chief,
            org_unit_id: None,
        },
        now,
    )
    .await?;
    for (i, p) in pids.iter().enumerate() {
        if i % 7 != 3 {
            training_store::mark(tx, held, p.0, "organiser", chief, now).await?;
        }
    }
    let koseki = units["koseki"];
    training_store::insert_session(
        tx,
        &NewSession {
            title: "マイナンバー利用事務系の取扱い説明会",
            held_on: &soon,
            description: "窓口端末の管理区域と持出し禁止の確認。",
            audience: "units",
            units: &[koseki.0],
            roles: &[],
            required: true,
            organiser_id: chief,
            org_unit_id: None,
        },
        now,
    )
    .await?;
    let today_s = date_str(today);
    let manager = org_store::holders(tx, Role::SecurityManager.code(), Some(koseki), &today_s).await?;
    let leader = org_store::holders(tx, Role::PromotionLeader.code(), Some(koseki), &today_s).await?;
    if let (Some((m, _)), Some((l, _))) = (manager.first(), leader.first()) {
        training_store::insert_instruction(
            tx,
            koseki.0,
            m.0,
            l.0,
            "課内の未受講者に基礎研修の資料を配布し、受講を報告させてください。",
            now,
        )
        .await?;
    }
    Ok(())
}
