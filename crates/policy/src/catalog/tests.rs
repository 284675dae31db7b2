use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use time::macros::date;

use super::*;

fn id(s: &str) -> ClauseId {
    s.parse()
        .unwrap_or_else(|e| panic!("test clause id {s:?}: {e}"))
}

/// The workspace root (crates/policy/../..).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn reads_the_whole_text_without_problems() {
    let c = catalog();
    assert!(c.problems.is_empty(), "problems: {:#?}", c.problems);
    assert!(!c.clauses.is_empty());
}

/// A body of the source between an exact title line and the next `付 則`
/// line, cut with plain string search (not with the parser).
fn body_after(title: &str) -> Vec<&'static str> {
    let start = POLICY_TEXT
        .find(&format!("\n{title}\n"))
        .unwrap_or_else(|| panic!("{title} not found as a line"));
    let rest = &POLICY_TEXT[start + title.len() + 2..];
    let end = rest.find("\n付 則\n").unwrap_or(rest.len());
    rest[..end].lines().collect()
}

/// What a line says once the extraction's `- ` markers and spaces are gone.
fn words(line: &str) -> &str {
    line.trim_start_matches([' ', '-']).trim()
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    articles: usize,
    numbered_paragraphs: usize,
    items: usize,
    sub_items: usize,
}

/// Counts clause lines with simple line patterns.
fn count_lines(lines: &[&str]) -> Counts {
    let mut n = Counts::default();
    for l in lines {
        let w = words(l);
        let mut chars = w.chars();
        let first = chars.next();
        let second = chars.next();
        if w.starts_with('第') && w.chars().take(8).any(|c| c == '条') {
            n.articles += 1;
        } else if first.is_some_and(|c| c.is_ascii_digit())
            && w.trim_start_matches(|c: char| c.is_ascii_digit()).starts_with(' ')
        {
            n.numbered_paragraphs += 1;
        } else if first == Some('(') && second.is_some_and(|c| c.is_ascii_digit()) {
            n.items += 1;
        } else if first.is_some_and(|c| "アイウエオカキクケコ".contains(c)) && second == Some(' ') {
            n.sub_items += 1;
        }
    }
    n
}

fn count_catalog(document: Document) -> Counts {
    let mut n = Counts::default();
    for c in catalog().document(document) {
        let id = c.id;
        if !id.sub_items().is_empty() {
            n.sub_items += 1;
        } else if id.item().is_some() {
            n.items += 1;
        } else if id.paragraph().is_some_and(|p| p >= 2) {
            n.numbered_paragraphs += 1;
        } else if id.paragraph().is_none() {
            n.articles += 1;
        }
    }
    n
}

#[test]
fn every_clause_of_the_text_is_in_the_catalog() {
    let y = count_lines(&body_after("第2章 江戸川区情報管理安全対策要綱"));
    let k = count_lines(&body_after("第3章 江戸川区情報管理安全対策基準"));
    // The counts as read by a person, so a change in both the text and the
    // parser does not go unnoticed.
    assert_eq!(
        y,
        Counts {
            articles: 13,
            numbered_paragraphs: 7,
            items: 16,
            sub_items: 5
        },
        "要綱 line counts"
    );
    assert_eq!(
        k,
        Counts {
            articles: 35,
            numbered_paragraphs: 38,
            items: 59,
            sub_items: 19
        },
        "基準 line counts"
    );
    assert_eq!(count_catalog(Document::BasicPolicy), y, "要綱 in the catalog");
    assert_eq!(count_catalog(Document::Standards), k, "基準 in the catalog");
    // The preface: sections 1．and 2．, section 2 in two paragraphs.
    let p: Vec<String> = catalog()
        .document(Document::Preface)
        .map(|c| c.id.to_string())
        .collect();
    assert_eq!(p, ["P1", "P2", "P2.1", "P2.2"]);
}

#[test]
fn every_line_of_the_text_is_accounted_for() {
    let parsed = parse::parse(POLICY_TEXT);
    let mut used: HashSet<usize> = parsed.structural_lines.iter().copied().collect();
    for c in &parsed.clauses {
        used.extend(&c.lines);
    }
    for n in &parsed.notes {
        used.extend(&n.lines);
    }
    for p in &parsed.provisions {
        used.extend(&p.lines);
    }
    let missing: Vec<(usize, &str)> = POLICY_TEXT
        .lines()
        .enumerate()
        .filter(|(i, l)| !l.trim().is_empty() && !used.contains(&(i + 1)))
        .map(|(i, l)| (i + 1, l))
        .collect();
    assert!(missing.is_empty(), "lines no clause or note holds: {missing:#?}");
}

#[test]
fn the_text_is_the_policy_s_own_words() {
    let lines: Vec<&str> = POLICY_TEXT.lines().collect();
    for c in &catalog().clauses {
        assert!(!c.text_ja.is_empty(), "{} has no text", c.id);
        assert!(!c.source_lines.is_empty(), "{} has no source line", c.id);
        // The source lines, joined, end with the clause's words: only the
        // number and the list marker come before them.
        let joined: String = c
            .source_lines
            .iter()
            .map(|&n| lines.get(n - 1).map_or("", |l| l.trim()))
            .collect();
        assert!(
            joined.ends_with(&c.text_ja),
            "{}: {:?} does not end with {:?}",
            c.id,
            joined,
            c.text_ja
        );
    }
    let check = |clause: &str, text: &str| {
        let got = catalog().clause(&id(clause)).map(|c| c.text_ja.as_str());
        assert_eq!(got, Some(text), "{clause}");
    };
    check(
        "K17.3",
        "セキュリティ管理者は、利用者認証に関し、職員等の新規採用、異動、派遣及び退職に合わせ、登録、変更、抹消などを速やかに実施し、登録情報について適正な管理を行わなければならない。",
    );
    // Joined across a page break.
    check("Y2.1.13", "指定管理者 地方自治法（昭和22年法律第67号）第244条の2第3項に定める指定管理者をいう。");
    check("K16.1.2", "セキュリティ管理者は、ネットワーク構成図、情報システム仕様書など、情報セキュリティの維持に重要な資料については、運用管理者など業務上必要とする者のみに閱覧を許可するものとする。");
    check("K8.1.3.h", "情報セキュリティ対策について外部委託事業者に遵守させ、責任体制を明確化すること。");
    check("K27.1.2.d", "その他情報資産に係る重大な被害が想定される場合");
    check("Y6.1.3.e", "情報セキュリティに関する規程の遵守状況の確認");
    check("K11.2.2", "ICカード等を紛失した場合は速やかにセキュリティ管理者に連絡しその指示を受けること。また、連絡があり次第、当該 ICカード等によるアクセスを停止すること。");
    check("K18", "情報システムの管理者権限は、セキュリティ管理者が有することとし、その権限を代行する者は、運用管理者として当該システムの運用管理に携わる必要最小限の者を指名し、厳重に管理しなければならない。");
    check("P2.2", "なお、指定管理者の自主事業及び法人内部の事務処理に係る情報資産、情報システムについては、基本的に、指定管理者自身の情報セキュリティに係る方針等に則して開発、運用するものとします。");
    let heading = |clause: &str| catalog().clause(&id(clause)).and_then(|c| c.heading_ja.clone());
    assert_eq!(heading("K25").as_deref(), Some("不正アクセス対策"));
    assert_eq!(heading("Y7").as_deref(), Some("江戸川区情報管理安全対策基準"));
    assert_eq!(heading("K9").as_deref(), Some("教育・訓練"));
    assert_eq!(heading("K35").as_deref(), Some("その他"));
}

#[test]
fn single_paragraph_articles_have_no_first_paragraph_clause() {
    let c = catalog();
    assert!(c.clause(&id("K18")).is_some());
    assert!(c.clause(&id("K18.1")).is_none());
    // With items the first paragraph is needed as their parent.
    assert!(c.clause(&id("K8.1")).is_some());
    assert!(c.clause(&id("K8.1.3.a")).is_some());
    assert!(c.clause(&id("K3.1.1.b")).is_some());
    assert!(c.clause(&id("K3.1.1.c")).is_none());
}

#[test]
fn ids_are_unique_and_parents_exist() {
    let c = catalog();
    let mut seen = HashSet::new();
    for clause in &c.clauses {
        assert!(seen.insert(clause.id), "{} twice", clause.id);
        if let Some(p) = clause.parent {
            assert!(c.clause(&p).is_some(), "{}: parent {p} missing", clause.id);
        }
    }
    // In policy order.
    let ids: Vec<ClauseId> = c.clauses.iter().map(|c| c.id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
}

#[test]
fn every_clause_and_note_has_a_gist_and_no_gist_is_stale() {
    let c = catalog();
    let missing: Vec<String> = c
        .clauses
        .iter()
        .filter(|c| c.gist_en.trim().is_empty())
        .map(|c| c.id.to_string())
        .chain(
            c.notes
                .iter()
                .filter(|n| n.gist_en.trim().is_empty())
                .map(|n| n.key.clone()),
        )
        .collect();
    assert!(missing.is_empty(), "no gist for {missing:?}");
    let gists: BTreeMap<String, String> = toml::from_str(GISTS).unwrap_or_default();
    let known: HashSet<String> = c
        .clauses
        .iter()
        .map(|c| c.id.to_string())
        .chain(c.notes.iter().map(|n| n.key.clone()))
        .collect();
    let stale: Vec<&String> = gists.keys().filter(|k| !known.contains(*k)).collect();
    assert!(stale.is_empty(), "gists for nothing: {stale:?}");
    for (k, g) in &gists {
        assert!(!g.contains('\n') && g.len() < 240, "gist of {k} is not one short line");
    }
}

#[test]
fn versions_come_from_the_fusoku() {
    let c = catalog();
    let dates: Vec<(Date, Vec<Document>)> = c
        .versions
        .iter()
        .map(|v| (v.effective, v.documents.clone()))
        .collect();
    use Document::{BasicPolicy as Y, Standards as K};
    assert_eq!(
        dates,
        [
            (date!(2002 - 04 - 01), vec![Y, K]),
            (date!(2003 - 05 - 19), vec![Y]),
            (date!(2005 - 12 - 22), vec![K]),
            (date!(2005 - 12 - 26), vec![Y]),
            (date!(2006 - 04 - 01), vec![Y]),
            (date!(2007 - 04 - 01), vec![Y, K]),
        ]
    );
    assert_eq!(c.provisions.len(), 8);
    assert_eq!(c.version_on(date!(2002 - 03 - 31)).map(|v| v.effective), None);
    assert_eq!(
        c.version_on(date!(2005 - 12 - 24)).map(|v| v.effective),
        Some(date!(2005 - 12 - 22))
    );
    assert_eq!(
        c.version_on(date!(2026 - 11 - 28)).map(|v| v.label.as_str()),
        Some("平成19年4月1日施行")
    );
    assert!(c.versions.iter().all(|v| !v.note_ja.is_empty()));
    // The 経過措置 is kept with the first 付則 of the 基準.
    assert!(c
        .provisions
        .iter()
        .any(|p| p.document == K && p.text_ja.contains("1 年以内に対応を図る")));
}

#[test]
fn the_repo_copy_is_the_shared_policy_file() {
    let candidates = [
        root().join("../shared/policy/edogawa-security-policy.ja.txt"),
        PathBuf::from("/work/shared/policy/edogawa-security-policy.ja.txt"),
    ];
    let Some(shared) = candidates.iter().find(|p| p.exists()) else {
        println!(
            "SKIP the_repo_copy_is_the_shared_policy_file: no shared policy file at {candidates:?}"
        );
        return;
    };
    let bytes = std::fs::read(shared).unwrap_or_default();
    assert!(
        bytes == POLICY_TEXT.as_bytes(),
        "crates/policy/policy/edogawa-security-policy.ja.txt differs from {}",
        shared.display()
    );
}

#[test]
fn controls_are_well_formed() {
    let c = catalog();
    assert!(!c.controls.is_empty());
    let mut ids = HashSet::new();
    for ctl in &c.controls {
        let who = &ctl.id;
        assert!(ids.insert(ctl.id.clone()), "control {who} twice");
        assert!(who.starts_with("ctl."), "{who}: ids start with ctl.");
        assert!(!ctl.clauses.is_empty(), "{who} serves no clause");
        for cl in &ctl.clauses {
            assert!(c.clause(cl).is_some(), "{who}: unknown clause {cl}");
        }
        assert!(
            !ctl.title_ja.is_empty() && !ctl.title_en.is_empty(),
            "{who}: titles"
        );
        let has = |f: &Option<String>| f.as_deref().is_some_and(|s| !s.trim().is_empty());
        match ctl.kind {
            ControlKind::Enforced => {
                assert!(has(&ctl.code) && has(&ctl.test), "{who}: enforced needs code and test");
                check_code_path(who, ctl.code.as_deref().unwrap_or_default());
                check_code_path(who, ctl.test.as_deref().unwrap_or_default());
                assert!(
                    ctl.test.as_deref().is_some_and(|t| t.contains("::")),
                    "{who}: the test names its function"
                );
            }
            ControlKind::Checked => {
                let check = ctl.check.as_deref().unwrap_or_default();
                assert!(CHECK_IDS.contains(&check), "{who}: unknown check {check:?}");
            }
            ControlKind::Procedural => {
                assert!(
                    has(&ctl.question_ja)
                        && has(&ctl.question_en)
                        && has(&ctl.evidence_ja)
                        && has(&ctl.evidence_en),
                    "{who}: procedural needs questions and evidence in both languages"
                );
            }
            ControlKind::NotApplicable => {
                assert!(
                    has(&ctl.reason) && has(&ctl.reason_en),
                    "{who}: not applicable needs a reason in both languages"
                );
            }
        }
    }
}

/// `path` or `path::fn_name`: the file exists and, when named, the function
/// is defined in it.
fn check_code_path(control: &str, spec: &str) {
    let (path, func) = match spec.split_once("::") {
        Some((p, f)) => (p, Some(f)),
        None => (spec, None),
    };
    let file = root().join(path);
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{control}: {path} cannot be read: {e}"));
    if let Some(f) = func {
        // Integration tests are declared `both_engines!(name, …)`.
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        assert!(
            compact.contains(&format!("fn{f}("))
                || compact.contains(&format!("fn{f}<"))
                || compact.contains(&format!("both_engines!({f},")),
            "{control}: no fn {f} in {path}"
        );
    }
}

#[test]
fn every_clause_is_covered_by_a_control() {
    let c = catalog();
    let uncovered = c.uncovered();
    assert!(uncovered.is_empty(), "clauses with no control: {uncovered:?}");
    // The rule itself: a parent covers its parts, parts cover their parent.
    assert!(c.is_covered(&id("K17.3")));
}

#[test]
fn every_check_id_serves_a_control() {
    let c = catalog();
    for check in CHECK_IDS {
        assert!(
            c.controls
                .iter()
                .any(|ctl| ctl.check.as_deref() == Some(check)),
            "no control uses check {check}"
        );
    }
}

#[test]
fn lookups() {
    let c = catalog();
    let k17 = id("K17");
    let parts: Vec<String> = c.children(&k17).map(|c| c.id.to_string()).collect();
    assert_eq!(parts, ["K17.1", "K17.2", "K17.3", "K17.4"]);
    assert!(c.clause(&id("K36")).is_none());
    assert!(c
        .controls_for(&id("K17.3"))
        .any(|ctl| ctl.kind == ControlKind::Checked));
    assert!(c.procedural_controls().all(|ctl| ctl.kind == ControlKind::Procedural));
    let total: usize = c.counts_by_kind().iter().map(|(_, n)| n).sum();
    assert_eq!(total, c.controls.len());
}
