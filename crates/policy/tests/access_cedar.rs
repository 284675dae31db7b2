//! The access-decision engine against Cedar, the reference oracle.
//!
//! A generated ward (deterministic seed) is loaded into the engine, changed
//! a few thousand times one change at a time (grants added, replaced,
//! removed; statuses, transfers, reclassifications, denies, managers, unit
//! moves), and only then written out as Cedar entities and policies from
//! the generator's own plain copy of the ward. Every generated request must
//! get the same allow/deny from both, and the engine's reason must name a
//! policy Cedar found satisfied (or none, for a deny by default).
//!
//! The Cedar encoding:
//! - `OrgUnit::"id"` with its parent unit as parent; `Person::"id"` with its
//!   unit as parent and `status`; `Asset::"id"` with `owner` (an OrgUnit),
//!   `secret`, `ground`, `zone`, `personal`, `manager` (optional, a Person)
//!   and `operators` (a set of Persons).
//! - Five static policies: 一般情報 read by `principal in resource.owner`;
//!   administer by the manager, by an operator; forbid for a non-active
//!   person; forbid administer for anyone else.
//! - One `permit` per grant (`principal == Person` or `principal in OrgUnit`,
//!   `resource ==` its asset, its actions, its period and conditions on the
//!   context) and one `forbid` per deny. Cedar has no "exists a grant such
//!   that", so each grant is a policy of its own.
//! - The context carries `now` (Unix seconds), `sod` (second of the JST day)
//!   and `weekday` (JST, Monday = 0), computed here by plain arithmetic
//!   independently of the engine's `time`-crate JST conversion, and `zone`
//!   and `area` when the request states them.
//! - Cedar's authorizer evaluates every policy in its set; each request is
//!   given its asset's slice (the static policies and the grants and denies
//!   whose resource is that asset), which cannot change an answer because
//!   every other grant and deny is scoped to another resource. A sample also
//!   runs against the whole set to show that.
//!
//! `MAMORI_ACCESS_DIFF_REQUESTS` overrides the 100,000 requests.
//!
//! `benches/access.rs` includes this file as a module for the same ward and
//! encoding; `#[test]` items vanish there.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::Instant;

use cedar_policy as cedar;
use mamori_policy::access::{
    AccessEngine, Action, ActionSet, AreaId, Asset, AssetId, Classification, Conditions, Context,
    Decision, Deny, DenyId, Grant, GrantId, NetworkZone, OrgUnit, OrgUnitId, Person, PersonId,
    PersonStatus, Query, Reason, Request, SecretGround, Subject, TimeWindow,
};
use time::{OffsetDateTime, Time, UtcOffset, Weekday};

/// SplitMix64: small, fast, and the same on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo) as u64) as i64
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// How big a ward to generate.
#[derive(Debug, Clone, Copy)]
pub struct WardSize {
    pub units: usize,
    pub staff: usize,
    pub assets: usize,
    pub secret_percent: u64,
    pub grants: usize,
    pub denies: usize,
}

/// The differential test's ward.
pub const TEST_WARD: WardSize = WardSize {
    units: 60,
    staff: 500,
    assets: 2_000,
    secret_percent: 20,
    grants: 5_000,
    denies: 150,
};

/// SPEC §6's ward.
pub const SPEC_WARD: WardSize = WardSize {
    units: 300,
    staff: 5_000,
    assets: 20_000,
    secret_percent: 20,
    grants: 50_000,
    denies: 1_000,
};

/// 2026-06-01 00:00 JST: the middle of the generated time range.
pub const T0: i64 = 1_780_239_600;
const SPAN: i64 = 200 * 86_400;
const AREAS: i64 = 6;
const JST_SECONDS: i64 = 9 * 3600;

fn at(unix: i64, offset_hours: i8) -> OffsetDateTime {
    let offset = UtcOffset::from_hms(offset_hours, 0, 0).expect("offset");
    OffsetDateTime::from_unix_timestamp(unix)
        .expect("timestamp")
        .to_offset(offset)
}

/// The generator's own copy of the ward: what Cedar is built from.
#[derive(Debug, Clone)]
pub struct Ward {
    pub units: BTreeMap<OrgUnitId, Option<OrgUnitId>>,
    pub people: BTreeMap<PersonId, Person>,
    pub assets: BTreeMap<AssetId, Asset>,
    pub grants: BTreeMap<GrantId, Grant>,
    pub denies: BTreeMap<DenyId, Deny>,
    // People, units and assets are changed but never added or removed.
    person_ids: Vec<PersonId>,
    unit_ids: Vec<OrgUnitId>,
    asset_ids: Vec<AssetId>,
    next_grant: i64,
    next_deny: i64,
}

impl Ward {
    pub fn generate(size: WardSize, seed: u64) -> Ward {
        let mut rng = Rng::new(seed);
        let mut ward = Ward {
            units: BTreeMap::new(),
            people: BTreeMap::new(),
            assets: BTreeMap::new(),
            grants: BTreeMap::new(),
            denies: BTreeMap::new(),
            person_ids: Vec::new(),
            unit_ids: Vec::new(),
            asset_ids: Vec::new(),
            next_grant: 1,
            next_deny: 1,
        };
        // 区 → 部 → 課 → 係.
        let departments = (size.units / 8).max(1);
        let mut depth: Vec<u8> = vec![0];
        ward.units.insert(OrgUnitId(1), None);
        for i in 2..=size.units as i64 {
            let parent = if i <= 1 + departments as i64 {
                1
            } else {
                loop {
                    let p = rng.range(2, i);
                    if depth[p as usize - 1] < 3 {
                        break p;
                    }
                }
            };
            depth.push(depth[parent as usize - 1] + 1);
            ward.units.insert(OrgUnitId(i), Some(OrgUnitId(parent)));
        }
        let non_root: Vec<OrgUnitId> = ward.units.keys().skip(1).copied().collect();
        for i in 1..=size.staff as i64 {
            let id = PersonId(100_000 + i);
            let org_unit = (!rng.chance(1)).then(|| *rng.pick(&non_root));
            let status = match rng.below(1000) {
                0..=24 => PersonStatus::Disabled,
                25..=44 => PersonStatus::Retired,
                45..=69 => PersonStatus::Locked,
                _ => PersonStatus::Active,
            };
            ward.people.insert(
                id,
                Person {
                    id,
                    org_unit,
                    status,
                },
            );
        }
        ward.person_ids = ward.people.keys().copied().collect();
        ward.unit_ids = ward.units.keys().copied().collect();
        for i in 1..=size.assets as i64 {
            let id = AssetId(500_000 + i);
            let asset = ward.random_asset(id, &mut rng, &non_root, size.secret_percent);
            ward.assets.insert(id, asset);
        }
        ward.asset_ids = ward.assets.keys().copied().collect();
        for _ in 0..size.grants {
            let g = ward.random_grant(&mut rng);
            ward.grants.insert(g.id, g);
        }
        for _ in 0..size.denies {
            let d = ward.random_deny(&mut rng);
            ward.denies.insert(d.id, d);
        }
        ward
    }

    fn random_asset(
        &self,
        id: AssetId,
        rng: &mut Rng,
        units: &[OrgUnitId],
        secret_percent: u64,
    ) -> Asset {
        let people = &self.person_ids;
        let classification = if rng.chance(secret_percent) {
            Classification::Secret(if rng.chance(70) {
                SecretGround::SecretDocument
            } else {
                SecretGround::SystemOperation
            })
        } else {
            Classification::General
        };
        let security_manager = rng.chance(90).then(|| *rng.pick(people));
        let operators = (0..rng.below(4)).map(|_| *rng.pick(people)).collect();
        Asset {
            id,
            owner: *rng.pick(units),
            classification,
            zone: *rng.pick(&NetworkZone::ALL),
            personal_info: rng.chance(40),
            security_manager,
            operators,
        }
    }

    fn random_time(rng: &mut Rng) -> i64 {
        T0 + rng.range(-SPAN, SPAN)
    }

    fn random_validity(rng: &mut Rng) -> (Option<OffsetDateTime>, Option<OffsetDateTime>) {
        let a = Self::random_time(rng);
        let b = Self::random_time(rng);
        let (from, until) = (a.min(b), a.max(b) + 1);
        match rng.below(100) {
            0..=64 => (None, None),
            65..=79 => (Some(at(from, 9)), None),
            80..=89 => (None, Some(at(until, 0))),
            _ => (Some(at(from, 0)), Some(at(until, 9))),
        }
    }

    fn random_conditions(rng: &mut Rng) -> Conditions {
        let mut c = Conditions::default();
        if rng.chance(40) {
            for _ in 0..1 + rng.below(2) {
                let start = if rng.chance(70) {
                    rng.below(96) as u32 * 900
                } else {
                    rng.below(86_400) as u32
                };
                let end = loop {
                    let e = if rng.chance(70) {
                        rng.below(96) as u32 * 900
                    } else {
                        rng.below(86_400) as u32
                    };
                    if e != start {
                        break e;
                    }
                };
                c.windows.push(TimeWindow {
                    start: time_of(start),
                    end: time_of(end),
                });
            }
        }
        if rng.chance(30) {
            let days = [
                Weekday::Monday,
                Weekday::Tuesday,
                Weekday::Wednesday,
                Weekday::Thursday,
                Weekday::Friday,
                Weekday::Saturday,
                Weekday::Sunday,
            ];
            c.weekdays = days.into_iter().filter(|_| rng.chance(60)).collect();
            if c.weekdays.is_empty() {
                c.weekdays.push(*rng.pick(&days));
            }
        }
        if rng.chance(35) {
            c.zones = NetworkZone::ALL
                .into_iter()
                .filter(|_| rng.chance(50))
                .collect();
            if c.zones.is_empty() {
                c.zones.push(*rng.pick(&NetworkZone::ALL));
            }
        }
        if rng.chance(15) {
            c.areas = (0..1 + rng.below(2))
                .map(|_| AreaId(rng.range(1, AREAS + 1)))
                .collect();
        }
        c
    }

    fn random_actions(rng: &mut Rng, administer: bool) -> ActionSet {
        let mut set = ActionSet::EMPTY;
        for (a, p) in [
            (Action::Read, 80),
            (Action::Write, 40),
            (Action::Export, 25),
            (Action::Administer, 15),
        ] {
            if (administer || a != Action::Administer) && rng.chance(p) {
                set.insert(a);
            }
        }
        if set.is_empty() {
            set.insert(Action::Read);
        }
        set
    }

    fn random_subject(&self, rng: &mut Rng) -> Subject {
        if rng.chance(85) {
            Subject::Person(*rng.pick(&self.person_ids))
        } else {
            Subject::OrgUnit(*rng.pick(&self.unit_ids))
        }
    }

    fn random_grant_with_id(&self, id: GrantId, rng: &mut Rng) -> Grant {
        // Mostly on secret assets: a few tries to find one.
        let tries = if rng.chance(60) { 20 } else { 1 };
        let mut asset = *rng.pick(&self.asset_ids);
        for _ in 1..tries {
            if self.assets[&asset].classification.is_secret() {
                break;
            }
            asset = *rng.pick(&self.asset_ids);
        }
        let subject = self.random_subject(rng);
        let (valid_from, valid_until) = Self::random_validity(rng);
        Grant {
            id,
            subject,
            asset,
            actions: Self::random_actions(rng, false),
            valid_from,
            valid_until,
            conditions: Self::random_conditions(rng),
            reason: matches!(subject, Subject::OrgUnit(_))
                .then(|| "窓口端末を係で共用するため".to_owned()),
        }
    }

    fn random_grant(&mut self, rng: &mut Rng) -> Grant {
        let id = GrantId(self.next_grant);
        self.next_grant += 1;
        self.random_grant_with_id(id, rng)
    }

    fn random_deny(&mut self, rng: &mut Rng) -> Deny {
        let id = DenyId(self.next_deny);
        self.next_deny += 1;
        // Mostly on something a grant allows, so denies matter.
        let (subject, asset) = match self
            .grants
            .values()
            .nth(rng.below(self.grants.len().max(1)))
        {
            Some(g) if rng.chance(70) => (g.subject, g.asset),
            _ => (self.random_subject(rng), *rng.pick(&self.asset_ids)),
        };
        let (valid_from, valid_until) = if rng.chance(50) {
            (None, None)
        } else {
            Self::random_validity(rng)
        };
        Deny {
            id,
            subject,
            asset,
            actions: Self::random_actions(rng, true),
            valid_from,
            valid_until,
        }
    }

    pub fn engine(&self) -> AccessEngine {
        AccessEngine::load(
            self.units.iter().map(|(id, parent)| OrgUnit {
                id: *id,
                parent: *parent,
            }),
            self.people.values().cloned(),
            self.assets.values().cloned(),
            self.grants.values().cloned(),
            self.denies.values().cloned(),
        )
        .expect("generated ward loads")
    }

    /// The unit and its ancestors, nearest first.
    pub fn chain(&self, unit: OrgUnitId) -> Vec<OrgUnitId> {
        let mut chain = vec![unit];
        let mut u = unit;
        while let Some(Some(p)) = self.units.get(&u) {
            chain.push(*p);
            u = *p;
        }
        chain
    }

    fn end_person_grants(&mut self, person: PersonId) -> BTreeSet<GrantId> {
        let ended: BTreeSet<GrantId> = self
            .grants
            .values()
            .filter(|g| g.subject == Subject::Person(person))
            .map(|g| g.id)
            .collect();
        for g in &ended {
            self.grants.remove(g);
        }
        ended
    }

    /// Applies one random change to this copy and, one call at a time, to
    /// the engine; checks that the engine accepts or refuses it alike.
    pub fn mutate(&mut self, engine: &mut AccessEngine, rng: &mut Rng) {
        let people = self.person_ids.clone();
        let units = self.unit_ids.clone();
        let assets = self.asset_ids.clone();
        let grants: Vec<GrantId> = self.grants.keys().copied().collect();
        match rng.below(100) {
            0..=29 if !grants.is_empty() => {
                let id = *rng.pick(&grants);
                let g = self.random_grant_with_id(id, rng);
                engine.replace_grant(g.clone()).expect("replace grant");
                self.grants.insert(id, g);
            }
            30..=41 if !grants.is_empty() => {
                let id = *rng.pick(&grants);
                engine.remove_grant(id).expect("remove grant");
                self.grants.remove(&id);
            }
            42..=65 => {
                let g = self.random_grant(rng);
                engine.add_grant(g.clone()).expect("add grant");
                self.grants.insert(g.id, g);
            }
            66..=70 => {
                let id = *rng.pick(&people);
                let status = *rng.pick(&[
                    PersonStatus::Active,
                    PersonStatus::Active,
                    PersonStatus::Active,
                    PersonStatus::Disabled,
                    PersonStatus::Retired,
                    PersonStatus::Locked,
                ]);
                let ended = engine.set_person_status(id, status).expect("status");
                if let Some(p) = self.people.get_mut(&id) {
                    p.status = status;
                }
                let expected = if status == PersonStatus::Retired {
                    self.end_person_grants(id)
                } else {
                    BTreeSet::new()
                };
                assert_eq!(
                    ended.iter().map(|g| g.id).collect::<BTreeSet<_>>(),
                    expected
                );
            }
            71..=73 => {
                let id = *rng.pick(&people);
                let to = (!rng.chance(3)).then(|| *rng.pick(&units));
                let ended = engine.transfer_person(id, to).expect("transfer");
                let moved = self.people.get(&id).is_some_and(|p| p.org_unit != to);
                if let Some(p) = self.people.get_mut(&id) {
                    p.org_unit = to;
                }
                let expected = if moved {
                    self.end_person_grants(id)
                } else {
                    BTreeSet::new()
                };
                assert_eq!(
                    ended.iter().map(|g| g.id).collect::<BTreeSet<_>>(),
                    expected
                );
            }
            74..=81 => {
                let id = *rng.pick(&assets);
                let c = match rng.below(3) {
                    0 => Classification::General,
                    1 => Classification::Secret(SecretGround::SecretDocument),
                    _ => Classification::Secret(SecretGround::SystemOperation),
                };
                engine.reclassify(id, c).expect("reclassify");
                if let Some(a) = self.assets.get_mut(&id) {
                    a.classification = c;
                }
            }
            82..=87 => {
                let d = self.random_deny(rng);
                engine.add_deny(d.clone()).expect("add deny");
                self.denies.insert(d.id, d);
            }
            88..=90 if !self.denies.is_empty() => {
                let ids: Vec<DenyId> = self.denies.keys().copied().collect();
                let id = *rng.pick(&ids);
                engine.remove_deny(id).expect("remove deny");
                self.denies.remove(&id);
            }
            91..=96 => {
                let id = *rng.pick(&assets);
                let mut a = self.random_asset(id, rng, &units[1..], 20);
                if let Some(old) = self.assets.get(&id) {
                    // Keep the classification (changed by reclassify above)
                    // half the time, the owner the other half.
                    if rng.chance(50) {
                        a.classification = old.classification;
                    } else {
                        a.owner = old.owner;
                    }
                }
                engine.update_asset(a.clone()).expect("update asset");
                self.assets.insert(id, a);
            }
            _ => {
                // Move a unit under another; a move into its own subtree
                // must be refused and change nothing.
                let id = *rng.pick(&units[1..]);
                let parent = *rng.pick(&units);
                let cycle = self.chain(parent).contains(&id);
                let result = engine.upsert_org_unit(OrgUnit {
                    id,
                    parent: Some(parent),
                });
                assert_eq!(result.is_err(), cycle, "move {id} under {parent}");
                if !cycle {
                    self.units.insert(id, Some(parent));
                }
            }
        }
    }

    /// People in `unit` and the units below it.
    fn members_below(&self, unit: OrgUnitId) -> Vec<PersonId> {
        self.people
            .values()
            .filter(|p| p.org_unit.is_some_and(|u| self.chain(u).contains(&unit)))
            .map(|p| p.id)
            .collect()
    }

    /// Generates requests aimed at every rule: grant holders at and around
    /// their windows and periods, owning-unit staff, administrators, denied
    /// subjects, random pairs, and a few unknown ids.
    pub fn requests(&self, n: usize, rng: &mut Rng) -> Vec<Request> {
        let people: Vec<PersonId> = self.people.keys().copied().collect();
        let assets: Vec<AssetId> = self.assets.keys().copied().collect();
        let grants: Vec<&Grant> = self.grants.values().collect();
        let denies: Vec<&Deny> = self.denies.values().collect();
        let general: Vec<&Asset> = self
            .assets
            .values()
            .filter(|a| !a.classification.is_secret())
            .collect();
        let mut below: HashMap<OrgUnitId, Vec<PersonId>> = HashMap::new();
        let mut members = |unit: OrgUnitId| -> Vec<PersonId> {
            below
                .entry(unit)
                .or_insert_with(|| self.members_below(unit))
                .clone()
        };
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let mut time = Self::random_time(rng);
            let (subject, asset, action) = match rng.below(100) {
                0..=39 if !grants.is_empty() => {
                    let g = *rng.pick(&grants);
                    let subject = match g.subject {
                        Subject::Person(p) => p,
                        Subject::OrgUnit(u) => match members(u).as_slice() {
                            [] => *rng.pick(&people),
                            m => *rng.pick(m),
                        },
                    };
                    let action = if rng.chance(75) {
                        *rng.pick(&g.actions.iter().collect::<Vec<_>>())
                    } else {
                        *rng.pick(&Action::ALL)
                    };
                    // Aim at the edges of the grant's windows and period.
                    let day = time - (time + JST_SECONDS).rem_euclid(86_400);
                    if !g.conditions.windows.is_empty() && rng.chance(50) {
                        let w = rng.pick(&g.conditions.windows);
                        let edge =
                            i64::from(seconds_of(if rng.chance(50) { w.start } else { w.end }));
                        time = day + edge + rng.range(-1, 2);
                    }
                    if rng.chance(20) {
                        let edges: Vec<i64> = [g.valid_from, g.valid_until]
                            .into_iter()
                            .flatten()
                            .map(OffsetDateTime::unix_timestamp)
                            .collect();
                        if !edges.is_empty() {
                            time = *rng.pick(&edges) + rng.range(-1, 1);
                        }
                    }
                    (subject, g.asset, action)
                }
                40..=54 if !general.is_empty() => {
                    let a = *rng.pick(&general);
                    let subject = match members(a.owner).as_slice() {
                        [] => *rng.pick(&people),
                        m => *rng.pick(m),
                    };
                    let action = if rng.chance(70) {
                        Action::Read
                    } else {
                        *rng.pick(&Action::ALL)
                    };
                    (subject, a.id, action)
                }
                55..=64 => {
                    let a = &self.assets[rng.pick(&assets)];
                    let admins: Vec<PersonId> = a
                        .security_manager
                        .iter()
                        .chain(&a.operators)
                        .copied()
                        .collect();
                    let subject = if !admins.is_empty() && rng.chance(70) {
                        *rng.pick(&admins)
                    } else {
                        *rng.pick(&people)
                    };
                    let action = if rng.chance(80) {
                        Action::Administer
                    } else {
                        *rng.pick(&Action::ALL)
                    };
                    (subject, a.id, action)
                }
                65..=71 if !denies.is_empty() => {
                    let d = *rng.pick(&denies);
                    let subject = match d.subject {
                        Subject::Person(p) => p,
                        Subject::OrgUnit(u) => match members(u).as_slice() {
                            [] => *rng.pick(&people),
                            m => *rng.pick(m),
                        },
                    };
                    (
                        subject,
                        d.asset,
                        *rng.pick(&d.actions.iter().collect::<Vec<_>>()),
                    )
                }
                72..=73 => {
                    if rng.chance(50) {
                        (
                            PersonId(-rng.range(1, 1000)),
                            *rng.pick(&assets),
                            Action::Read,
                        )
                    } else {
                        (
                            *rng.pick(&people),
                            AssetId(-rng.range(1, 1000)),
                            Action::Read,
                        )
                    }
                }
                _ => (
                    *rng.pick(&people),
                    *rng.pick(&assets),
                    *rng.pick(&Action::ALL),
                ),
            };
            let zone = (!rng.chance(20)).then(|| *rng.pick(&NetworkZone::ALL));
            let area = rng.chance(50).then(|| AreaId(rng.range(1, AREAS + 1)));
            let offset = *rng.pick(&[9i8, 9, 0, -5, 14]);
            out.push(Request {
                subject,
                action,
                asset,
                context: Context {
                    at: at(time, offset),
                    zone,
                    area,
                },
            });
        }
        out
    }
}

fn time_of(second_of_day: u32) -> Time {
    Time::from_hms(
        (second_of_day / 3600) as u8,
        (second_of_day / 60 % 60) as u8,
        (second_of_day % 60) as u8,
    )
    .expect("second of day")
}

fn seconds_of(t: Time) -> u32 {
    let (h, m, s) = t.as_hms();
    u32::from(h) * 3600 + u32::from(m) * 60 + u32::from(s)
}

// --- Cedar ------------------------------------------------------------------

/// The static policies; their ids are what [`expected_policy`] names.
pub const STATIC_POLICIES: [(&str, &str); 5] = [
    (
        "general_own_unit",
        r#"permit(principal, action == Action::"read", resource)
           when { !resource.secret && principal in resource.owner };"#,
    ),
    (
        "security_manager",
        r#"permit(principal, action == Action::"administer", resource)
           when { resource has manager && principal == resource.manager };"#,
    ),
    (
        "operator",
        r#"permit(principal, action == Action::"administer", resource)
           when { resource.operators.contains(principal) };"#,
    ),
    (
        "inactive",
        r#"forbid(principal, action, resource) unless { principal.status == "active" };"#,
    ),
    (
        "only_administrators",
        r#"forbid(principal, action == Action::"administer", resource)
           unless { (resource has manager && principal == resource.manager)
                    || resource.operators.contains(principal) };"#,
    ),
];

/// The entity type names, parsed once: Cedar's parser is the slow part of
/// building a request in an unoptimised build.
fn type_name(kind: &str) -> cedar::EntityTypeName {
    static NAMES: OnceLock<HashMap<&'static str, cedar::EntityTypeName>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        ["OrgUnit", "Person", "Asset", "Action"]
            .into_iter()
            .map(|k| (k, cedar::EntityTypeName::from_str(k).expect("type name")))
            .collect()
    });
    names[kind].clone()
}

fn uid(kind: &str, id: i64) -> cedar::EntityUid {
    cedar::EntityUid::from_type_name_and_id(type_name(kind), cedar::EntityId::new(id.to_string()))
}

fn action_uid(action: Action) -> cedar::EntityUid {
    cedar::EntityUid::from_type_name_and_id(
        type_name("Action"),
        cedar::EntityId::new(action.code()),
    )
}

fn status_code(s: PersonStatus) -> &'static str {
    match s {
        PersonStatus::Active => "active",
        PersonStatus::Disabled => "disabled",
        PersonStatus::Retired => "retired",
        PersonStatus::Locked => "locked",
    }
}

fn scope(subject: Subject) -> String {
    match subject {
        Subject::Person(p) => format!(r#"principal == Person::"{}""#, p.0),
        Subject::OrgUnit(u) => format!(r#"principal in OrgUnit::"{}""#, u.0),
    }
}

fn actions_list(actions: ActionSet) -> String {
    let list: Vec<String> = actions
        .iter()
        .map(|a| format!(r#"Action::"{}""#, a.code()))
        .collect();
    list.join(", ")
}

fn period(from: Option<OffsetDateTime>, until: Option<OffsetDateTime>, when: &mut Vec<String>) {
    if let Some(f) = from {
        when.push(format!("context.now >= {}", f.unix_timestamp()));
    }
    if let Some(u) = until {
        when.push(format!("context.now < {}", u.unix_timestamp()));
    }
}

/// The Cedar text of one grant.
pub fn grant_policy(g: &Grant) -> String {
    let mut when = Vec::new();
    period(g.valid_from, g.valid_until, &mut when);
    let c = &g.conditions;
    if !c.windows.is_empty() {
        let any: Vec<String> = c
            .windows
            .iter()
            .map(|w| {
                let (s, e) = (seconds_of(w.start), seconds_of(w.end));
                if s < e {
                    format!("(context.sod >= {s} && context.sod < {e})")
                } else {
                    format!("(context.sod >= {s} || context.sod < {e})")
                }
            })
            .collect();
        when.push(format!("({})", any.join(" || ")));
    }
    if !c.weekdays.is_empty() {
        let days: Vec<String> = c
            .weekdays
            .iter()
            .map(|d| d.number_days_from_monday().to_string())
            .collect();
        when.push(format!("[{}].contains(context.weekday)", days.join(", ")));
    }
    if !c.zones.is_empty() {
        let zones: Vec<String> = c.zones.iter().map(|z| format!("{:?}", z.code())).collect();
        when.push(format!(
            "context has zone && [{}].contains(context.zone)",
            zones.join(", ")
        ));
    }
    if !c.areas.is_empty() {
        let areas: Vec<String> = c.areas.iter().map(|a| a.0.to_string()).collect();
        when.push(format!(
            "context has area && [{}].contains(context.area)",
            areas.join(", ")
        ));
    }
    let when = if when.is_empty() {
        String::new()
    } else {
        format!(" when {{ {} }}", when.join(" && "))
    };
    format!(
        r#"permit({}, action in [{}], resource == Asset::"{}"){when};"#,
        scope(g.subject),
        actions_list(g.actions),
        g.asset.0
    )
}

/// The Cedar text of one deny.
pub fn deny_policy(d: &Deny) -> String {
    let mut when = Vec::new();
    period(d.valid_from, d.valid_until, &mut when);
    let when = if when.is_empty() {
        String::new()
    } else {
        format!(" when {{ {} }}", when.join(" && "))
    };
    format!(
        r#"forbid({}, action in [{}], resource == Asset::"{}"){when};"#,
        scope(d.subject),
        actions_list(d.actions),
        d.asset.0
    )
}

/// The ward as Cedar sees it.
pub struct CedarWard {
    pub entities: cedar::Entities,
    /// Per asset: the static policies and that asset's grants and denies.
    pub sliced: HashMap<AssetId, cedar::PolicySet>,
    /// Every policy in one set.
    pub whole: cedar::PolicySet,
    /// How many policies `whole` holds.
    pub policy_count: usize,
}

impl CedarWard {
    pub fn build(ward: &Ward) -> CedarWard {
        let mut entities = Vec::new();
        for (id, parent) in &ward.units {
            let parents: HashSet<_> = parent.iter().map(|p| uid("OrgUnit", p.0)).collect();
            entities.push(cedar::Entity::new_no_attrs(uid("OrgUnit", id.0), parents));
        }
        for p in ward.people.values() {
            let parents: HashSet<_> = p.org_unit.iter().map(|u| uid("OrgUnit", u.0)).collect();
            let attrs = HashMap::from([(
                "status".to_owned(),
                cedar::RestrictedExpression::new_string(status_code(p.status).to_owned()),
            )]);
            entities
                .push(cedar::Entity::new(uid("Person", p.id.0), attrs, parents).expect("person"));
        }
        for a in ward.assets.values() {
            let mut attrs =
                HashMap::from([
                    (
                        "owner".to_owned(),
                        cedar::RestrictedExpression::new_entity_uid(uid("OrgUnit", a.owner.0)),
                    ),
                    (
                        "secret".to_owned(),
                        cedar::RestrictedExpression::new_bool(a.classification.is_secret()),
                    ),
                    (
                        "ground".to_owned(),
                        cedar::RestrictedExpression::new_string(match a.classification {
                            Classification::Secret(g) => g.clause().to_owned(),
                            Classification::General => "K3.1.2".to_owned(),
                        }),
                    ),
                    (
                        "zone".to_owned(),
                        cedar::RestrictedExpression::new_string(a.zone.code().to_owned()),
                    ),
                    (
                        "personal".to_owned(),
                        cedar::RestrictedExpression::new_bool(a.personal_info),
                    ),
                    (
                        "operators".to_owned(),
                        cedar::RestrictedExpression::new_set(a.operators.iter().map(|p| {
                            cedar::RestrictedExpression::new_entity_uid(uid("Person", p.0))
                        })),
                    ),
                ]);
            if let Some(m) = a.security_manager {
                attrs.insert(
                    "manager".to_owned(),
                    cedar::RestrictedExpression::new_entity_uid(uid("Person", m.0)),
                );
            }
            entities.push(
                cedar::Entity::new(uid("Asset", a.id.0), attrs, HashSet::new()).expect("asset"),
            );
        }
        let entities = cedar::Entities::from_entities(entities, None).expect("entities");

        let statics: Vec<cedar::Policy> = STATIC_POLICIES
            .iter()
            .map(|(id, text)| {
                cedar::Policy::parse(Some(cedar::PolicyId::new(*id)), *text).expect("static policy")
            })
            .collect();
        let mut per_asset: HashMap<AssetId, Vec<cedar::Policy>> = HashMap::new();
        for g in ward.grants.values() {
            let id = cedar::PolicyId::new(format!("grant-{}", g.id.0));
            let p = cedar::Policy::parse(Some(id), grant_policy(g))
                .unwrap_or_else(|e| panic!("grant {}: {e}\n{}", g.id, grant_policy(g)));
            per_asset.entry(g.asset).or_default().push(p);
        }
        for d in ward.denies.values() {
            let id = cedar::PolicyId::new(format!("deny-{}", d.id.0));
            let p = cedar::Policy::parse(Some(id), deny_policy(d)).expect("deny policy");
            per_asset.entry(d.asset).or_default().push(p);
        }
        let mut whole = cedar::PolicySet::new();
        let mut sliced = HashMap::new();
        let mut policy_count = statics.len();
        for p in &statics {
            whole.add(p.clone()).expect("add");
        }
        for id in ward.assets.keys() {
            let mut set = cedar::PolicySet::new();
            for p in statics
                .iter()
                .chain(per_asset.get(id).into_iter().flatten())
            {
                set.add(p.clone()).expect("add");
            }
            for p in per_asset.get(id).into_iter().flatten() {
                whole.add(p.clone()).expect("add");
                policy_count += 1;
            }
            sliced.insert(*id, set);
        }
        CedarWard {
            entities,
            sliced,
            whole,
            policy_count,
        }
    }

    /// The policy set a request is evaluated against: its asset's slice, or
    /// the static policies alone for an unknown asset.
    pub fn slice(&self, asset: AssetId) -> &cedar::PolicySet {
        self.sliced.get(&asset).unwrap_or(&self.whole)
    }
}

/// The Cedar request for one of ours. Time fields are computed by plain
/// arithmetic on Unix seconds, not through the `time` crate.
pub fn cedar_request(r: &Request) -> cedar::Request {
    let now = r.context.at.unix_timestamp();
    let jst = now + JST_SECONDS;
    let sod = jst.rem_euclid(86_400);
    // 1970-01-01 was a Thursday (Monday = 0 → 3).
    let weekday = (jst.div_euclid(86_400) + 3).rem_euclid(7);
    let mut pairs = vec![
        ("now".to_owned(), cedar::RestrictedExpression::new_long(now)),
        ("sod".to_owned(), cedar::RestrictedExpression::new_long(sod)),
        (
            "weekday".to_owned(),
            cedar::RestrictedExpression::new_long(weekday),
        ),
    ];
    if let Some(z) = r.context.zone {
        pairs.push((
            "zone".to_owned(),
            cedar::RestrictedExpression::new_string(z.code().to_owned()),
        ));
    }
    if let Some(a) = r.context.area {
        pairs.push((
            "area".to_owned(),
            cedar::RestrictedExpression::new_long(a.0),
        ));
    }
    cedar::Request::new(
        uid("Person", r.subject.0),
        action_uid(r.action),
        uid("Asset", r.asset.0),
        cedar::Context::from_pairs(pairs).expect("context"),
        None,
    )
    .expect("request")
}

/// The Cedar policy the engine's reason corresponds to; `None` for a deny
/// by default (Cedar then has no satisfied policy at all).
pub fn expected_policy(reason: Reason) -> Option<String> {
    match reason {
        Reason::GeneralOwnUnit => Some("general_own_unit".into()),
        Reason::Granted(g) => Some(format!("grant-{}", g.0)),
        Reason::SecurityManager => Some("security_manager".into()),
        Reason::DelegatedOperator => Some("operator".into()),
        Reason::PersonInactive(_) => Some("inactive".into()),
        Reason::ExplicitDeny(d) => Some(format!("deny-{}", d.0)),
        Reason::NotAdministrator => Some("only_administrators".into()),
        Reason::GrantNotInEffect(_)
        | Reason::SecretExportNeedsExportGrant
        | Reason::SecretNeedsGrant
        | Reason::NoGrant => None,
    }
}

/// Whether Cedar's response agrees with the engine's decision: same
/// allow/deny, no evaluation error, and the engine's reason among Cedar's
/// (or Cedar has none for a deny by default).
pub fn agrees(decision: &Decision, response: &cedar::Response) -> bool {
    let allow = response.decision() == cedar::Decision::Allow;
    let reasons: Vec<String> = response
        .diagnostics()
        .reason()
        .map(|p| p.to_string())
        .collect();
    let errors = response.diagnostics().errors().count();
    allow == decision.allow
        && errors == 0
        && match expected_policy(decision.reason) {
            Some(p) => reasons.contains(&p),
            None => reasons.is_empty(),
        }
}

fn explain(ward: &Ward, r: &Request, decision: &Decision, response: &cedar::Response) -> String {
    let mut s = format!(
        "request: {r:#?}\nengine: {decision:?}\ncedar: {:?}, reasons {:?}, errors {:?}\n",
        response.decision(),
        response
            .diagnostics()
            .reason()
            .map(|p| p.to_string())
            .collect::<Vec<_>>(),
        response
            .diagnostics()
            .errors()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
    );
    let person = ward.people.get(&r.subject);
    s += &format!("person: {person:?}\n");
    if let Some(u) = person.and_then(|p| p.org_unit) {
        s += &format!("unit chain: {:?}\n", ward.chain(u));
    }
    s += &format!("asset: {:?}\n", ward.assets.get(&r.asset));
    for g in ward.grants.values().filter(|g| g.asset == r.asset) {
        s += &format!("grant: {}\n", grant_policy(g));
    }
    for d in ward.denies.values().filter(|d| d.asset == r.asset) {
        s += &format!("deny: {}\n", deny_policy(d));
    }
    s
}

fn request_count() -> usize {
    std::env::var("MAMORI_ACCESS_DIFF_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

#[test]
fn engine_agrees_with_cedar_on_generated_ward() {
    let started = Instant::now();
    let mut rng = Rng::new(0x0065_646f_6761_7761); // "edogawa"
    let mut ward = Ward::generate(TEST_WARD, 2026);
    let mut engine = ward.engine();
    // Incremental changes first, so the indexes they touch are what is tested.
    for _ in 0..2_000 {
        ward.mutate(&mut engine, &mut rng);
    }
    let fresh = ward.engine();
    assert_eq!(engine.stats(), fresh.stats(), "incremental vs fresh load");
    let mutated = started.elapsed();
    let cedar_ward = CedarWard::build(&ward);
    let cedar_built = started.elapsed();
    let requests = ward.requests(request_count(), &mut rng);
    let built = started.elapsed();
    eprintln!("ward+mutations {mutated:.1?}, cedar {cedar_built:.1?}, requests {built:.1?}");

    let authorizer = cedar::Authorizer::new();
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut unknown = 0;
    for (i, r) in requests.iter().enumerate() {
        let decision = match engine.decide(r) {
            Ok(d) => d,
            Err(e) => {
                // Only the generated unknown ids may fail.
                assert!(
                    r.subject.0 < 0 || r.asset.0 < 0,
                    "request {i}: unexpected error {e}: {r:?}"
                );
                unknown += 1;
                continue;
            }
        };
        let response = authorizer.is_authorized(
            &cedar_request(r),
            cedar_ward.slice(r.asset),
            &cedar_ward.entities,
        );
        if !agrees(&decision, &response) {
            panic!(
                "first disagreement, request {i} of {}:\n{}",
                requests.len(),
                explain(&ward, r, &decision, &response)
            );
        }
        *counts.entry(decision.reason.code()).or_default() += 1;
    }
    // Slicing by asset changes nothing: a sample against the whole set.
    for r in requests
        .iter()
        .filter(|r| r.subject.0 > 0 && r.asset.0 > 0)
        .step_by(200)
    {
        let decision = engine.decide(r).expect("known ids");
        let response =
            authorizer.is_authorized(&cedar_request(r), &cedar_ward.whole, &cedar_ward.entities);
        assert!(
            agrees(&decision, &response),
            "whole policy set:\n{}",
            explain(&ward, r, &decision, &response)
        );
    }
    println!(
        "{} requests ({unknown} with unknown ids), {} policies, zero disagreements; \
         built in {:.1?}, total {:.1?}",
        requests.len(),
        cedar_ward.policy_count,
        built,
        started.elapsed()
    );
    println!("reasons: {counts:#?}");
    // Every rule was exercised, allow and deny alike.
    for code in mamori_policy::access::ALL_REASON_CODES {
        if request_count() >= 10_000 {
            assert!(
                counts.get(code).copied().unwrap_or(0) > 0,
                "{code} never decided"
            );
        }
    }
}

#[test]
fn review_lists_agree_with_decisions_on_generated_ward() {
    let mut rng = Rng::new(7);
    let mut ward = Ward::generate(TEST_WARD, 4);
    let mut engine = ward.engine();
    for _ in 0..500 {
        ward.mutate(&mut engine, &mut rng);
    }
    let fresh = ward.engine();
    let people: Vec<PersonId> = ward.people.keys().copied().collect();
    let assets: Vec<AssetId> = ward.assets.keys().copied().collect();
    let context = Context {
        at: at(T0 + 10 * 3600, 9),
        zone: Some(NetworkZone::Lgwan),
        area: Some(AreaId(1)),
    };
    let allowed = |p: PersonId, a: AssetId| -> ActionSet {
        Action::ALL
            .into_iter()
            .filter(|action| {
                engine
                    .decide(&Request {
                        subject: p,
                        action: *action,
                        asset: a,
                        context,
                    })
                    .expect("known ids")
                    .allow
            })
            .collect()
    };
    for _ in 0..30 {
        let a = *rng.pick(&assets);
        let who = engine
            .who_can_access(a, &Query::At(context))
            .expect("asset");
        assert_eq!(
            who,
            fresh.who_can_access(a, &Query::At(context)).expect("asset")
        );
        let listed: BTreeMap<PersonId, ActionSet> =
            who.iter().map(|w| (w.person, w.actions)).collect();
        for p in &people {
            let expected = allowed(*p, a);
            assert_eq!(
                listed.get(p).copied().unwrap_or(ActionSet::EMPTY),
                expected,
                "who_can_access({a}) for {p}"
            );
        }
    }
    for _ in 0..10 {
        let p = *rng.pick(&people);
        let what = engine
            .what_can_access(p, &Query::At(context))
            .expect("person");
        assert_eq!(
            what,
            fresh
                .what_can_access(p, &Query::At(context))
                .expect("person")
        );
        let listed: BTreeMap<AssetId, ActionSet> =
            what.iter().map(|w| (w.asset, w.actions)).collect();
        for a in &assets {
            assert_eq!(
                listed.get(a).copied().unwrap_or(ActionSet::EMPTY),
                allowed(p, *a),
                "what_can_access({p}) for {a}"
            );
        }
    }
}
