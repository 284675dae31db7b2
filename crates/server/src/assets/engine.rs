//! The access-decision engine as the server keeps it: one
//! [`AccessEngine`] in memory, loaded at start and then changed one entity
//! at a time from the `access_changes` feed (written by triggers in the
//! same transaction as every change that can alter a decision). Each server
//! tails the feed, so several servers on one PostgreSQL agree within one
//! poll; a server applies its own changes at once after they commit.

use super::store::{self, Scales};
use crate::db::{Conn, Db};
use mamori_policy::access::{
    AccessEngine, Action, ActionSet, AreaId, Asset as EAsset, AssetId, Classification, Conditions,
    Grant as EGrant, GrantId, NetworkZone, OrgUnit as EUnit, OrgUnitId, Person as EPerson,
    PersonId, PersonStatus, SecretGround, Subject,
};
use sqlx::Row;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use time::OffsetDateTime;

/// The engine and the names the outside world uses for its ids.
#[derive(Default)]
pub struct Model {
    pub engine: AccessEngine,
    /// 職員番号 → person.
    pub person_by_number: HashMap<String, PersonId>,
    pub number_of_person: HashMap<PersonId, String>,
    /// Asset code → asset.
    pub asset_by_code: HashMap<String, AssetId>,
    pub code_of_asset: HashMap<AssetId, String>,
    /// Managed-area code → area.
    pub area_by_code: HashMap<String, AreaId>,
    /// The last change of the feed applied.
    pub last_change: i64,
    /// (unlock time, person) of temporary lockouts, to reload when they lapse.
    lock_expiries: BTreeSet<(i64, i64)>,
    /// Since when the feed has had a hole just past `last_change`.
    hole_since: Option<std::time::Instant>,
}

/// How long a hole in the feed's ids is waited for (a transaction that
/// took an id and has not committed yet) before it is taken as a rollback.
pub const GAP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Clone)]
pub struct AccessModel(Arc<Inner>);

struct Inner {
    model: RwLock<Model>,
    /// One applier at a time.
    sync: tokio::sync::Mutex<()>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("access model: {0}")]
    Model(#[from] mamori_policy::access::ModelError),
}

impl AccessModel {
    /// Loads the whole model from the database (at start).
    pub async fn load(db: &Db, now: i64) -> Result<AccessModel, EngineError> {
        let mut conn = db.pool().acquire().await?;
        // Read the feed's position first: anything that changes while the
        // rest loads is applied again afterwards (reloads are idempotent).
        let last_change = store::last_change(&mut conn).await?;
        let mut model = Model {
            last_change,
            ..Model::default()
        };
        let units = load_units(&mut conn, None).await?;
        let people = load_people(&mut conn, None, now).await?;
        let scales = store::scales(&mut conn).await?;
        for a in store::areas(&mut conn).await? {
            model.area_by_code.insert(a.code, AreaId(a.id));
        }
        let assets = load_assets(&mut conn, &scales, None).await?;
        let mut persons = Vec::with_capacity(people.len());
        for p in people {
            model.note_person(&p, now);
            persons.push(p.person);
        }
        let mut eassets = Vec::with_capacity(assets.len());
        for (code, a) in assets {
            model.asset_by_code.insert(code.clone(), a.id);
            model.code_of_asset.insert(a.id, code);
            eassets.push(a);
        }
        model.engine = AccessEngine::load(units, persons, eassets, [], [])?;
        let grants = store::list_grants(&mut conn, None, None, true).await?;
        for g in grants {
            if let Some(eg) = engine_grant(&g, &model.area_by_code) {
                if let Err(e) = model.engine.add_grant(eg) {
                    tracing::warn!(grant = g.id, error = %e, "grant not loaded into the access engine");
                }
            }
        }
        Ok(AccessModel(Arc::new(Inner {
            model: RwLock::new(model),
            sync: tokio::sync::Mutex::new(()),
        })))
    }

    /// Reads the model (decisions). Never held across an await.
    pub fn read(&self) -> RwLockReadGuard<'_, Model> {
        self.0.model.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies what changed since the last call: after this returns, every
    /// change committed before it was called is in the engine.
    pub async fn sync(&self, db: &Db, now: i64) -> Result<usize, EngineError> {
        let _one = self.0.sync.lock().await;
        let mut conn = db.pool().acquire().await?;
        let mut applied = 0;
        loop {
            let after = self.read().last_change;
            let changes = store::changes_after(&mut conn, after, 500).await?;
            let Some(last) = changes.last().map(|c| c.0) else {
                break;
            };
            // Feed ids are handed out at insert and become visible at
            // commit; on PostgreSQL a lower id can commit after a higher one
            // (or never, when its transaction rolls back). Only the run of
            // ids without a hole is passed for good; what follows a hole is
            // applied now and again (reloading is idempotent) until the hole
            // fills or has stayed open for `GAP_WAIT`.
            let mut contiguous = after;
            for (id, _, _) in &changes {
                if *id == contiguous + 1 {
                    contiguous = *id;
                } else {
                    break;
                }
            }
            // Collapse repeats: each entity is reloaded once per batch.
            let mut seen = BTreeSet::new();
            let mut loaded = Vec::new();
            let mut lookups = Lookups::default();
            for (_, entity, id) in &changes {
                if seen.insert((entity.clone(), *id)) {
                    loaded.push(load_change(&mut conn, &mut lookups, entity, *id, now).await?);
                }
            }
            let mut model = self.0.model.write().unwrap_or_else(|e| e.into_inner());
            for change in loaded {
                model.apply(change, now);
            }
            applied += changes.len();
            if contiguous == last {
                model.last_change = last;
                model.hole_since = None;
                continue;
            }
            let since = *model.hole_since.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() >= GAP_WAIT {
                model.last_change = last;
                model.hole_since = None;
            } else {
                model.last_change = contiguous;
                break;
            }
        }
        // Temporary lockouts that have lapsed since.
        let lapsed: Vec<i64> = {
            let model = self.read();
            model
                .lock_expiries
                .iter()
                .take_while(|(t, _)| *t <= now)
                .map(|(_, p)| *p)
                .collect()
        };
        if !lapsed.is_empty() {
            let mut reloaded = Vec::new();
            for p in &lapsed {
                reloaded.push(
                    load_change(&mut conn, &mut Lookups::default(), "person", *p, now).await?,
                );
            }
            let mut model = self.0.model.write().unwrap_or_else(|e| e.into_inner());
            model.lock_expiries.retain(|(t, _)| *t > now);
            for change in reloaded {
                model.apply(change, now);
            }
        }
        Ok(applied)
    }
}

/// One entity as it is now in the database (`None`: gone or ended).
enum Change {
    Unit(Option<EUnit>),
    Person(Option<PersonRow>),
    Asset(i64, Option<(String, EAsset)>),
    Grant(i64, Option<EGrant>),
    Area(i64, Option<String>),
    Levels(Vec<(String, EAsset)>),
}

impl Model {
    fn note_person(&mut self, p: &PersonRow, now: i64) {
        if let Some(old) = self.number_of_person.insert(p.person.id, p.number.clone()) {
            if old != p.number {
                self.person_by_number.remove(&old);
            }
        }
        self.person_by_number.insert(p.number.clone(), p.person.id);
        self.lock_expiries.retain(|(_, id)| *id != p.person.id.0);
        if let Some(t) = p.locked_until.filter(|t| *t > now) {
            self.lock_expiries.insert((t, p.person.id.0));
        }
    }

    fn apply(&mut self, change: Change, now: i64) {
        let result = match change {
            Change::Unit(Some(u)) => self.engine.upsert_org_unit(u).map(drop),
            Change::Unit(None) => Ok(()),
            Change::Person(Some(p)) => {
                self.note_person(&p, now);
                let id = p.person.id;
                if self.engine.person(id).is_none() {
                    self.engine.add_person(p.person)
                } else {
                    self.engine
                        .transfer_person(id, p.person.org_unit)
                        .and_then(|_| self.engine.set_person_status(id, p.person.status))
                        .map(drop)
                }
            }
            Change::Person(None) => Ok(()),
            Change::Asset(_, Some((code, a))) => {
                self.set_asset_code(a.id, code);
                if self.engine.asset(a.id).is_some() {
                    self.engine.update_asset(a).map(drop)
                } else {
                    self.engine.add_asset(a)
                }
            }
            Change::Asset(id, None) => {
                let id = AssetId(id);
                if let Some(code) = self.code_of_asset.remove(&id) {
                    self.asset_by_code.remove(&code);
                }
                if self.engine.asset(id).is_some() {
                    self.engine.remove_asset(id).map(drop)
                } else {
                    Ok(())
                }
            }
            Change::Grant(id, Some(g)) => {
                if self.engine.grant(GrantId(id)).is_some() {
                    self.engine.replace_grant(g).map(drop)
                } else {
                    self.engine.add_grant(g)
                }
            }
            Change::Grant(id, None) => {
                if self.engine.grant(GrantId(id)).is_some() {
                    self.engine.remove_grant(GrantId(id)).map(drop)
                } else {
                    Ok(())
                }
            }
            Change::Area(id, Some(code)) => {
                self.area_by_code.insert(code, AreaId(id));
                Ok(())
            }
            Change::Area(_, None) => Ok(()),
            Change::Levels(assets) => {
                let mut r = Ok(());
                for (code, a) in assets {
                    self.set_asset_code(a.id, code);
                    let one = if self.engine.asset(a.id).is_some() {
                        self.engine.update_asset(a).map(drop)
                    } else {
                        self.engine.add_asset(a)
                    };
                    if one.is_err() {
                        r = one;
                    }
                }
                r
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "access engine refused a change from the database");
        }
    }

    fn set_asset_code(&mut self, id: AssetId, code: String) {
        if let Some(old) = self.code_of_asset.insert(id, code.clone()) {
            if old != code {
                self.asset_by_code.remove(&old);
            }
        }
        self.asset_by_code.insert(code, id);
    }
}

/// The scales and the managed areas, read at most once per batch of
/// changes (a batch of 500 grant changes reads the areas once, not 500 times).
#[derive(Default)]
struct Lookups {
    scales: Option<Scales>,
    areas: Option<HashMap<String, AreaId>>,
}

impl Lookups {
    async fn scales(&mut self, conn: &mut Conn) -> Result<&Scales, sqlx::Error> {
        if self.scales.is_none() {
            self.scales = Some(store::scales(conn).await?);
        }
        Ok(self.scales.get_or_insert_with(Scales::default))
    }

    async fn areas(&mut self, conn: &mut Conn) -> Result<&HashMap<String, AreaId>, sqlx::Error> {
        if self.areas.is_none() {
            let map = store::areas(conn)
                .await?
                .into_iter()
                .map(|a| (a.code, AreaId(a.id)))
                .collect();
            self.areas = Some(map);
        }
        Ok(self.areas.get_or_insert_with(HashMap::new))
    }
}

async fn load_change(
    conn: &mut Conn,
    lookups: &mut Lookups,
    entity: &str,
    id: i64,
    now: i64,
) -> Result<Change, EngineError> {
    Ok(match entity {
        "org_unit" => Change::Unit(load_units(conn, Some(id)).await?.into_iter().next()),
        "person" => Change::Person(load_people(conn, Some(id), now).await?.into_iter().next()),
        "asset" => {
            let scales = lookups.scales(conn).await?;
            Change::Asset(
                id,
                load_assets(conn, scales, Some(id))
                    .await?
                    .into_iter()
                    .next(),
            )
        }
        "grant" => {
            let g = store::get_grant(conn, id).await?;
            let areas = lookups.areas(conn).await?;
            Change::Grant(
                id,
                g.filter(|g| g.ended_at.is_none())
                    .and_then(|g| engine_grant(&g, areas)),
            )
        }
        "area" => Change::Area(
            id,
            store::areas(conn)
                .await?
                .into_iter()
                .find(|a| a.id == id)
                .map(|a| a.code),
        ),
        _ => {
            // `levels`: a level's meaning changed; every asset is re-read.
            let scales = lookups.scales(conn).await?;
            Change::Levels(load_assets(conn, scales, None).await?)
        }
    })
}

async fn load_units(conn: &mut Conn, id: Option<i64>) -> Result<Vec<EUnit>, sqlx::Error> {
    let rows = sqlx::query("SELECT id, parent_id FROM org_units WHERE ($1 = 0 OR id = $1)")
        .bind(id.unwrap_or(0))
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(EUnit {
                id: OrgUnitId(r.try_get(0)?),
                parent: r.try_get::<Option<i64>, _>(1)?.map(OrgUnitId),
            })
        })
        .collect()
}

/// A person as the engine sees them, with their 職員番号 and any lockout end.
struct PersonRow {
    person: EPerson,
    number: String,
    locked_until: Option<i64>,
}

/// The K17.3 standing of a person from their record and account.
pub fn standing(
    status: &str,
    disabled: bool,
    manual_lock: bool,
    locked_until: Option<i64>,
    now: i64,
) -> PersonStatus {
    if status == "retired" {
        PersonStatus::Retired
    } else if disabled || status == "pending" {
        PersonStatus::Disabled
    } else if manual_lock || locked_until.is_some_and(|t| t > now) {
        PersonStatus::Locked
    } else {
        PersonStatus::Active
    }
}

async fn load_people(
    conn: &mut Conn,
    id: Option<i64>,
    now: i64,
) -> Result<Vec<PersonRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT p.id, p.employee_number, p.org_unit_id, p.status,
                COALESCE(a.disabled, 0), COALESCE(a.manual_lock, 0), a.locked_until
         FROM persons p LEFT JOIN accounts a ON a.person_id = p.id
         WHERE ($1 = 0 OR p.id = $1)",
    )
    .bind(id.unwrap_or(0))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let status: String = r.try_get(3)?;
            let locked_until: Option<i64> = r.try_get(6)?;
            Ok(PersonRow {
                person: EPerson {
                    id: PersonId(r.try_get(0)?),
                    org_unit: r.try_get::<Option<i64>, _>(2)?.map(OrgUnitId),
                    status: standing(
                        &status,
                        r.try_get::<i64, _>(4)? != 0,
                        r.try_get::<i64, _>(5)? != 0,
                        locked_until,
                        now,
                    ),
                },
                number: r.try_get(1)?,
                locked_until,
            })
        })
        .collect()
}

/// Live assets with their operators, as (code, engine asset).
async fn load_assets(
    conn: &mut Conn,
    scales: &Scales,
    id: Option<i64>,
) -> Result<Vec<(String, EAsset)>, sqlx::Error> {
    let assets: Vec<_> = match id {
        Some(id) => store::get_asset(conn, scales, id)
            .await?
            .into_iter()
            .filter(|a| a.retired_at.is_none())
            .collect(),
        None => store::list_assets(conn, scales, false).await?,
    };
    let mut ops: HashMap<i64, Vec<PersonId>> = HashMap::new();
    for o in store::operators(conn, id, true).await? {
        ops.entry(o.asset_id)
            .or_default()
            .push(PersonId(o.person_id.0));
    }
    Ok(assets
        .into_iter()
        .map(|a| {
            let classification = if a.secret {
                Classification::Secret(match a.secret_ground.as_deref() {
                    Some("K3.1.1.a") => SecretGround::SecretDocument,
                    _ => SecretGround::SystemOperation,
                })
            } else {
                Classification::General
            };
            let e = EAsset {
                id: AssetId(a.id),
                owner: OrgUnitId(a.owner_org_unit_id.0),
                classification,
                zone: a.zone.parse().unwrap_or(NetworkZone::Lgwan),
                personal_info: a.personal_info,
                security_manager: a.security_manager_id.map(|p| PersonId(p.0)),
                operators: ops.remove(&a.id).unwrap_or_default(),
            };
            (a.code, e)
        })
        .collect())
}

fn at(secs: Option<i64>) -> Option<OffsetDateTime> {
    secs.and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
}

/// A stored grant in the engine's form (`None` if it no longer parses,
/// which the service's checks make impossible for grants it wrote).
pub fn engine_grant(g: &super::GrantRow, areas: &HashMap<String, AreaId>) -> Option<EGrant> {
    let mut errors = Vec::new();
    let conditions: Conditions = g.conditions.check("conditions", areas, &mut errors);
    if !errors.is_empty() {
        tracing::warn!(
            grant = g.id,
            "grant conditions no longer parse; left out of the engine"
        );
        return None;
    }
    let actions: ActionSet = g
        .actions
        .iter()
        .filter_map(|a| a.parse::<Action>().ok())
        .collect();
    Some(EGrant {
        id: GrantId(g.id),
        subject: match g.subject {
            super::SubjectRef::Person(p) => Subject::Person(PersonId(p)),
            super::SubjectRef::OrgUnit(u) => Subject::OrgUnit(OrgUnitId(u)),
        },
        asset: AssetId(g.asset_id),
        actions,
        valid_from: at(g.valid_from),
        valid_until: at(g.valid_until),
        conditions,
        reason: g.unit_reason.clone(),
    })
}
