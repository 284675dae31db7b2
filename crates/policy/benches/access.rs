//! Access decisions on SPEC §6's ward: the engine against cedar-policy
//! evaluating the equivalent policies and entities on the same requests.
//!
//! `cargo bench -p mamori-policy --bench access`
//!
//! The ward (5,000 staff, 300 units, 20,000 assets 20 % secret, 50,000
//! grants with time and zone conditions, 1,000 denies) and the Cedar
//! encoding come from `tests/access_cedar.rs`, included below. Criterion
//! reports means; the percentiles are computed here from one timing per
//! decision (each sample includes the cost of reading the clock, printed
//! as "timer"). Cedar gets its requests prebuilt, with the JST fields
//! already in the context, so its figures exclude work the engine's
//! include. Cedar is measured against each asset's slice of the policies
//! (what a fair deployment would do) and, on fewer requests, against the
//! whole set (what its authorizer does when given everything).
//!
//! `MAMORI_BENCH_QUICK=1` runs the test-sized ward with short criterion
//! runs, to check the bench itself.

#[allow(dead_code, unused_imports)]
#[path = "../tests/access_cedar.rs"]
mod ward;

use std::hint::black_box;
use std::time::{Duration, Instant};

use cedar_policy as cedar;
use criterion::Criterion;
use mamori_policy::access::{
    AccessEngine, Classification, Conditions, Grant, NetworkZone, OrgUnit, PersonStatus, Request,
    SecretGround,
};
use ward::{agrees, cedar_request, CedarWard, Rng, Ward, SPEC_WARD, TEST_WARD};

/// Percentiles of nanosecond samples.
struct Summary {
    p50: u64,
    p90: u64,
    p99: u64,
    p999: u64,
    max: u64,
    mean: f64,
    n: usize,
}

fn summarize(mut samples: Vec<u64>) -> Summary {
    samples.sort_unstable();
    let n = samples.len().max(1);
    let at = |q: f64| {
        samples
            .get(((n as f64 * q) as usize).min(n - 1))
            .copied()
            .unwrap_or(0)
    };
    Summary {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        p999: at(0.999),
        max: samples.last().copied().unwrap_or(0),
        mean: samples.iter().sum::<u64>() as f64 / n as f64,
        n: samples.len(),
    }
}

fn fmt_ns(ns: u64) -> String {
    if ns >= 1_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else if ns >= 10_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else {
        format!("{:.2} µs", ns as f64 / 1e3)
    }
}

fn row(name: &str, s: &Summary) {
    println!(
        "{name:<34} {:>6}  p50 {:>9}  p90 {:>9}  p99 {:>9}  p99.9 {:>9}  max {:>9}  mean {:>9}",
        s.n,
        fmt_ns(s.p50),
        fmt_ns(s.p90),
        fmt_ns(s.p99),
        fmt_ns(s.p999),
        fmt_ns(s.max),
        fmt_ns(s.mean as u64)
    );
}

/// Times `f` once per item.
fn time_each<T>(items: &[T], mut f: impl FnMut(&T)) -> Vec<u64> {
    items
        .iter()
        .map(|item| {
            let t = Instant::now();
            f(item);
            t.elapsed().as_nanos() as u64
        })
        .collect()
}

type Parts = (
    Vec<OrgUnit>,
    Vec<mamori_policy::access::Person>,
    Vec<mamori_policy::access::Asset>,
    Vec<Grant>,
    Vec<mamori_policy::access::Deny>,
);

fn parts(ward: &Ward) -> Parts {
    (
        ward.units
            .iter()
            .map(|(id, parent)| OrgUnit {
                id: *id,
                parent: *parent,
            })
            .collect(),
        ward.people.values().cloned().collect(),
        ward.assets.values().cloned().collect(),
        ward.grants.values().cloned().collect(),
        ward.denies.values().cloned().collect(),
    )
}

fn load(p: Parts) -> AccessEngine {
    AccessEngine::load(p.0, p.1, p.2, p.3, p.4).expect("ward loads")
}

/// The same grant with other conditions, for replacements.
fn altered(g: &Grant) -> Grant {
    Grant {
        conditions: if g.conditions == Conditions::default() {
            Conditions {
                zones: vec![NetworkZone::Lgwan],
                ..Conditions::default()
            }
        } else {
            Conditions::default()
        },
        ..g.clone()
    }
}

fn main() {
    let quick = std::env::var_os("MAMORI_BENCH_QUICK").is_some();
    let (size, request_count, whole_count) = if quick {
        (TEST_WARD, 10_000, 50)
    } else {
        (SPEC_WARD, 100_000, 200)
    };

    let t = Instant::now();
    let ward = Ward::generate(size, 2026);
    println!(
        "ward: {} units, {} staff, {} assets ({} secret), {} grants ({} with conditions), {} denies; generated in {:.1?}",
        ward.units.len(),
        ward.people.len(),
        ward.assets.len(),
        ward.assets.values().filter(|a| a.classification.is_secret()).count(),
        ward.grants.len(),
        ward.grants.values().filter(|g| g.conditions != Conditions::default()).count(),
        ward.denies.len(),
        t.elapsed()
    );

    // Full load of the model at start.
    let loads: Vec<u64> = (0..5)
        .map(|_| {
            let p = parts(&ward);
            let t = Instant::now();
            let engine = load(p);
            let ns = t.elapsed().as_nanos() as u64;
            drop(black_box(engine));
            ns
        })
        .collect();
    let load_ms = summarize(loads).p50 as f64 / 1e6;
    let mut engine = load(parts(&ward));

    let mut rng = Rng::new(0x0062_656e_6368);
    let requests: Vec<Request> = ward
        .requests(request_count, &mut rng)
        .into_iter()
        .filter(|r| r.subject.0 > 0 && r.asset.0 > 0)
        .collect();

    // The clock's own cost, included in every sample below.
    let timer = summarize(time_each(&requests, |_| {}));

    // Engine: three passes, the first also warms the caches.
    let mut engine_samples = Vec::with_capacity(requests.len() * 3);
    for _ in 0..3 {
        engine_samples.extend(time_each(&requests, |r| {
            black_box(engine.decide(black_box(r)).ok());
        }));
    }
    let engine_stats = summarize(engine_samples);
    let allowed = requests
        .iter()
        .filter(|r| engine.decide(r).is_ok_and(|d| d.allow))
        .count();

    // Cedar.
    let t = Instant::now();
    let cedar_ward = CedarWard::build(&ward);
    let cedar_load = t.elapsed();
    let cedar_requests: Vec<cedar::Request> = requests.iter().map(cedar_request).collect();
    let authorizer = cedar::Authorizer::new();
    let pairs: Vec<(&Request, &cedar::Request)> = requests.iter().zip(&cedar_requests).collect();
    let mut responses = Vec::with_capacity(pairs.len());
    let sliced = summarize(time_each(&pairs, |(r, c)| {
        responses.push(authorizer.is_authorized(
            c,
            cedar_ward.slice(r.asset),
            &cedar_ward.entities,
        ));
    }));
    let disagreements = requests
        .iter()
        .zip(&responses)
        .filter(|(r, resp)| engine.decide(r).map_or(true, |d| !agrees(&d, resp)))
        .count();
    drop(responses);
    let whole = summarize(time_each(
        &pairs[..whole_count.min(pairs.len())],
        |(_, c)| {
            black_box(authorizer.is_authorized(c, &cedar_ward.whole, &cedar_ward.entities));
        },
    ));

    // Updates, one change at a time, each timed and then undone.
    let grant_ids: Vec<_> = ward
        .grants
        .keys()
        .copied()
        .step_by(5)
        .take(10_000)
        .collect();
    let changes: Vec<(Grant, Grant)> = grant_ids
        .iter()
        .map(|id| {
            let g = ward.grants[id].clone();
            (altered(&g), g)
        })
        .collect();
    let mut replace = Vec::with_capacity(changes.len() * 2);
    let mut add_remove = Vec::with_capacity(changes.len() * 2);
    for (new, old) in &changes {
        let (new, old) = (new.clone(), old.clone());
        let t = Instant::now();
        engine.replace_grant(new).expect("replace");
        replace.push(t.elapsed().as_nanos() as u64);
        let t = Instant::now();
        engine.replace_grant(old.clone()).expect("replace back");
        replace.push(t.elapsed().as_nanos() as u64);
        let t = Instant::now();
        engine.remove_grant(old.id).expect("remove");
        add_remove.push(t.elapsed().as_nanos() as u64);
        let t = Instant::now();
        engine.add_grant(old).expect("add");
        add_remove.push(t.elapsed().as_nanos() as u64);
    }
    let replace = summarize(replace);
    let add_remove = summarize(add_remove);
    let people: Vec<_> = ward.people.keys().copied().step_by(3).collect();
    let status = summarize(time_each(&people, |p| {
        let before = ward.people[p].status;
        let to = if before == PersonStatus::Locked {
            PersonStatus::Disabled
        } else {
            PersonStatus::Locked
        };
        engine.set_person_status(*p, to).expect("status");
        engine.set_person_status(*p, before).expect("status back");
    }));
    let assets: Vec<_> = ward.assets.keys().copied().step_by(3).collect();
    let reclassify = summarize(time_each(&assets, |a| {
        let before = ward.assets[a].classification;
        let to = if before == Classification::General {
            Classification::Secret(SecretGround::SecretDocument)
        } else {
            Classification::General
        };
        engine.reclassify(*a, to).expect("reclassify");
        engine.reclassify(*a, before).expect("reclassify back");
    }));

    println!();
    println!(
        "requests: {} ({} allowed); engine vs Cedar disagreements: {disagreements}",
        requests.len(),
        allowed
    );
    println!(
        "full load: engine {load_ms:.1} ms; Cedar entities + {} policies {:.0?}",
        cedar_ward.policy_count, cedar_load
    );
    row("timer (empty sample)", &timer);
    row("engine decide", &engine_stats);
    row("cedar decide (asset's slice)", &sliced);
    row("cedar decide (whole policy set)", &whole);
    row("engine replace one grant", &replace);
    row("engine remove/add one grant", &add_remove);
    row("engine status change ×2", &status);
    row("engine reclassify ×2", &reclassify);
    let ratio = |a: u64, b: u64| a as f64 / b.max(1) as f64;
    println!(
        "ratio Cedar/engine (slice): p50 {:.0}×, p99 {:.0}×, mean {:.0}×",
        ratio(sliced.p50, engine_stats.p50),
        ratio(sliced.p99, engine_stats.p99),
        sliced.mean / engine_stats.mean.max(1e-9)
    );
    println!(
        "ratio Cedar/engine (whole set): p50 {:.0}×, p99 {:.0}×",
        ratio(whole.p50, engine_stats.p50),
        ratio(whole.p99, engine_stats.p99)
    );
    println!();

    // Criterion's means for the same operations.
    let (warm, measure) = if quick {
        (Duration::from_millis(200), Duration::from_millis(500))
    } else {
        (Duration::from_secs(2), Duration::from_secs(4))
    };
    let mut c = Criterion::default()
        .warm_up_time(warm)
        .measurement_time(measure)
        .configure_from_args();
    let mut i = 0;
    c.bench_function("access/engine_decide", |b| {
        b.iter(|| {
            i = (i + 1) % requests.len();
            black_box(engine.decide(black_box(&requests[i])).ok())
        })
    });
    let mut i = 0;
    c.bench_function("access/cedar_decide_slice", |b| {
        b.iter(|| {
            i = (i + 1) % pairs.len();
            let (r, creq) = pairs[i];
            black_box(authorizer.is_authorized(
                creq,
                cedar_ward.slice(r.asset),
                &cedar_ward.entities,
            ))
        })
    });
    let mut i = 0;
    let mut flip = false;
    c.bench_function("access/engine_replace_grant", |b| {
        b.iter(|| {
            i = (i + 1) % changes.len();
            flip = !flip;
            let g = if flip { &changes[i].0 } else { &changes[i].1 };
            black_box(engine.replace_grant(g.clone()).ok())
        })
    });
    let mut group = c.benchmark_group("access_load");
    group.sample_size(10);
    group.bench_function("engine_full_load", |b| {
        b.iter_batched(|| parts(&ward), load, criterion::BatchSize::LargeInput)
    });
    group.finish();
    c.final_summary();
}
